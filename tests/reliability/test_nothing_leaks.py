"""Issue 7, point 6: nothing leaks, over one real end-to-end run on loopback.

The emulator, the todo API (uvicorn) and the Flask todo web app (werkzeug) run in this process,
every logger at DEBUG with one handler capturing them all (the root logger's, and that of every
logger that does not propagate, like ``uvicorn.access``), and the process's stdout and stderr
captured at the file-descriptor level. A person signs in through the emulator's pages (the
``form_post`` answer arriving cross-site, without the ``SameSite=Lax`` cookie, as it does in a
browser), opens the profile and the todo list (``Todolist.Read``), adds two items and removes one
(``Todolist.ReadWrite``), meets the error pages, is attacked cross-site, and signs out; a second
person then signs in on the same browser and signs out.

Every secret that crossed the wire is taken from the wire itself, never from our code: the web
app's MSAL talks to the emulator through an httpx transport that records each exchange (codes,
PKCE verifiers, the client secret and refresh tokens going out; access, refresh and ID tokens
coming back), the API records the bearer tokens it receives, and the browser records every
response (session cookies, the ``form_post`` code, states, CSRF tokens). Then:

- none of them, nor a 16-character fragment of one (JWTs: of their payload and signature), nor
  anything JWT-shaped, appears in the captured logs (the library's structured events and their
  fields included), output or emulator console, nor in the OpenTelemetry spans and metric
  attributes the library reported during the run; a secret planted afterwards through the same
  channels is caught, so the check can fail;
- no response body of the run holds a stack trace, error pages included;
- every response of ``/auth/*`` and of the emulator's sign-in pages and token endpoint is
  ``Cache-Control: no-store``;
- every page of the web app carries ``X-Content-Type-Options: nosniff``, a ``frame-ancestors``
  CSP or ``X-Frame-Options: DENY``, and a ``Referrer-Policy``;
- forged todo forms and cross-site sign-outs are refused and change nothing.

Records logged by the test's own browser (an httpx client standing in for the person's browser:
httpcore logs the headers it receives, session cookies included) are set aside and counted: a
browser is not part of the system whose logs are checked.

What the run found: MSAL logs each token it obtains at DEBUG with the authorization code and PKCE
verifier of the request in clear (and ``client_info``, JWT-shaped); the library now masks MSAL's
records (``entra_ciam.signin.msal_logging``). And ``/auth/signout`` obeyed any request, so a link,
a redirect or a form on another site could sign a person out; it now answers only requests from
the app's own pages (``entra_ciam.signin.crosssite``), checked here in both adapters and in
Chromium, and the todo forms refuse ``Sec-Fetch-Site`` values other than ``same-origin`` too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import logging
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import pytest
from examples.flask_todo import create_app

from entra_ciam.events import emit
from entra_ciam.http import DEFAULT_TIMEOUT, MsalHttpClient, ssl_context
from entra_ciam.signin import msal_logging
from entra_ciam.signin.crosssite import cross_site_reason
from entra_ciam.signin.messages import Request
from tests.support.external import require_chromium
from tests.support.load import record
from tests.support.otel import otel
from tests.support.signin_apps import BUILDERS
from tests.support.todo_stack import (
    ADA,
    ALAN,
    CSRF_RE,
    TodoStack,
    csrf_of,
    descriptions,
    item_ids,
    todo_stack,
)
from tests.support.webapps import AppBrowser, serving_wsgi, signin_stack

COOKIE = "entra_ciam_session"
IDP_COOKIE = "devidp_session"
EVIL = "http://evil.example"
FRAGMENT = 16  # characters of a secret that count as leaking it
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}")
HIDDEN_RE = re.compile(r'<input type="hidden" name="(code|state|id_token|flow)" value="([^"]*)"')
TRACE_RE = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+|line \d+, in ')
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FRIENDLY_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}

# -- capturing every log record -------------------------------------------------------------------

KNOWN_LOGGERS = (
    "entra_ciam",
    "examples",
    "msal",
    "httpx",
    "httpcore",
    "urllib3",
    "werkzeug",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "asyncio",
)
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class CaptureAll(logging.Handler):
    """Every record, formatted with its traceback, its raw arguments and any extra fields."""

    def __init__(self, browser_thread: int) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s [%(threadName)s] %(message)s"))
        self.browser_thread = browser_thread
        self.lines: list[str] = []
        self.loggers: Counter[str] = Counter()
        self.browser_records = 0  # logged by the test's own httpx clients, set aside
        self._saved: dict[logging.Logger, tuple[int, bool]] = {}
        self._attached: list[logging.Logger] = []
        self._disable = logging.root.manager.disable

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.browser_thread and record.name.startswith(("httpx", "httpcore")):
            self.browser_records += 1
            return
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not hide the record
            text = f"{record.name} {record.levelname} {record.msg!r}"
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        self.lines.append(f"{text} args={record.args!r} extra={extra!r}")
        self.loggers[record.name] += 1

    def sweep(self) -> None:
        """Every logger known so far at DEBUG, enabled, and this handler where records stop."""
        logging.disable(logging.NOTSET)
        for name in KNOWN_LOGGERS:  # made now: werkzeug sets INFO on its logger if it is unset
            logging.getLogger(name)
        manager = logging.root.manager
        loggers = [logging.getLogger()] + [
            logger
            for logger in list(manager.loggerDict.values())
            if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            self._saved.setdefault(logger, (logger.level, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            stops_here = logger is logging.getLogger() or not logger.propagate
            if stops_here and self not in logger.handlers:
                logger.addHandler(self)
                self._attached.append(logger)

    def unwatched(self) -> list[str]:
        """Loggers whose records this handler may have missed: reconfigured since the last sweep
        (taken off, raised above DEBUG, disabled), or created since, not propagating."""
        manager = logging.root.manager
        loggers = [logging.getLogger()] + [
            logger
            for logger in list(manager.loggerDict.values())
            if isinstance(logger, logging.Logger)
        ]
        return [
            logger.name
            for logger in loggers
            if logger.disabled
            or logger.getEffectiveLevel() > logging.DEBUG
            or ((logger.parent is None or not logger.propagate) and self not in logger.handlers)
        ]

    def restore(self) -> None:
        for logger in self._attached:
            logger.removeHandler(self)
        for logger, (level, disabled) in self._saved.items():
            logger.setLevel(level)
            logger.disabled = disabled
        logging.disable(self._disable)

    def pieces(self, since: int = 0) -> list[tuple[str, str]]:
        """``(logger name, line)`` for each record captured from the ``since``-th on."""
        return [(line.split(" ", 1)[0], line) for line in self.lines[since:]]


@contextlib.contextmanager
def all_logs_at_debug() -> Iterator[CaptureAll]:
    handler = CaptureAll(threading.get_ident())
    handler.sweep()
    try:
        yield handler
    finally:
        handler.restore()


# -- recording the wire ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request and its response. ``source``: who saw it (``browser``, ``entra`` for the
    web app's MSAL calls to the emulator, ``api`` for the todo API's side of its calls)."""

    source: str
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def request_header(self, name: str) -> str | None:
        return next((v for k, v in self.request_headers if k.lower() == name.lower()), None)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Wire:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def __iter__(self) -> Iterator[Exchange]:
        with self._lock:
            return iter(list(self.exchanges))

    def __len__(self) -> int:
        return len(self.exchanges)

    def watch(self, client: httpx.Client, source: str = "browser") -> httpx.Client:
        """Record every response ``client`` receives (a browser's view of the run)."""

        def on_response(response: httpx.Response) -> None:
            response.read()
            request = response.request
            self.add(
                Exchange(
                    source,
                    request.method,
                    str(request.url),
                    tuple(request.headers.multi_items()),
                    request.read(),
                    response.status_code,
                    tuple(response.headers.multi_items()),
                    response.content,
                )
            )

        client.event_hooks["response"].append(on_response)
        return client

    def writes_to_api(self) -> int:
        return sum(1 for e in self if e.source == "api" and e.method in ("POST", "DELETE"))


class TapTransport(httpx.BaseTransport):
    """An httpx transport that passes everything through and records it."""

    def __init__(self, wire: Wire, inner: httpx.BaseTransport, source: str) -> None:
        self.wire = wire
        self.inner = inner
        self.source = source

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = request.read()
        response = self.inner.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
        self.wire.add(
            Exchange(
                self.source,
                request.method,
                str(request.url),
                tuple(request.headers.multi_items()),
                sent,
                response.status_code,
                tuple(response.headers.multi_items()),
                body,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def close(self) -> None:
        self.inner.close()


def recording_msal_client(wire: Wire, ca_bundle: str) -> MsalHttpClient:
    """The ``http_client`` MSAL gets: our MsalHttpClient, over a recording transport."""
    transport = TapTransport(wire, httpx.HTTPTransport(verify=ssl_context(ca_bundle)), "entra")
    client = httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False)
    return MsalHttpClient(client=client)


class ApiTap:
    """Wraps the todo API (ASGI) to record what each call carried and got."""

    def __init__(self, wire: Wire, app: Any) -> None:
        self.wire = wire
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received: list[bytes] = []
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def tapped_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                received.append(bytes(message.get("body") or b""))
            return message

        async def tapped_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body") or b""))
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)
        query = scope.get("query_string") or b""
        self.wire.add(
            Exchange(
                "api",
                scope["method"],
                scope["path"] + (f"?{query.decode('latin-1')}" if query else ""),
                tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
                b"".join(received),
                int(start.get("status", 0)),
                tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]),
                b"".join(chunks),
            )
        )


# -- the secrets and the detector -----------------------------------------------------------------


class Secrets:
    def __init__(self) -> None:
        self.by_kind: defaultdict[str, set[str]] = defaultdict(set)

    def add(self, kind: str, value: object) -> None:
        if isinstance(value, str) and len(value) >= 8:
            self.by_kind[kind].add(value)

    def count(self) -> int:
        return sum(len(values) for values in self.by_kind.values())

    def figures(self) -> dict[str, int]:
        return {kind: len(values) for kind, values in sorted(self.by_kind.items())}

    def needles(self) -> dict[str, str]:
        """Every string whose presence means a leak, with what it is part of."""
        found: dict[str, str] = {}
        for kind, values in self.by_kind.items():
            for value in values:
                for needle, part in _needles(value):
                    found.setdefault(needle, f"{kind} ({part})")
        return found


def _needles(value: str) -> Iterator[tuple[str, str]]:
    yield value, "whole"
    if quote(value, safe="") != value:
        yield quote(value, safe=""), "percent-encoded"
    parts = value.split(".")
    if len(parts) == 3 and value.startswith("eyJ"):  # a JWT: its header is the same for all
        for name, part in (("payload", parts[1]), ("signature", parts[2])):
            yield part, name
            yield part[:FRAGMENT], f"{name} prefix"
            yield part[-FRAGMENT:], f"{name} suffix"
    elif len(value) >= 24:
        yield value[:FRAGMENT], "prefix"
        yield value[-FRAGMENT:], "suffix"


def leaks(text: str | Iterable[tuple[str, str]], secrets: Secrets) -> list[str]:
    """What of ``secrets`` (or anything JWT-shaped) ``text`` holds, and where; never the values.

    ``text`` is a string or ``(where, text)`` pieces (a logger's name and its line, ``stdout``...).
    """
    pieces = [("text", text)] if isinstance(text, str) else list(text)
    joined = "\n".join(piece for _, piece in pieces)
    found: list[str] = []
    for needle, what in secrets.needles().items():
        if needle in joined:
            where = next((w for w, piece in pieces if needle in piece), "across pieces")
            found.append(f"{what} in {where}")
    match = JWT_RE.search(joined)
    if match is not None:
        where = next((w for w, piece in pieces if JWT_RE.search(piece)), "across pieces")
        found.append(f"a JWT-shaped string in {where}")
    return sorted(set(found))


def collect(wire: Wire, stack: TodoStack) -> Secrets:
    """Every secret of the run, from the recorded exchanges and the settings."""
    secrets = Secrets()
    config = stack.web_config
    secrets.add("client secret", config.client_secret)
    for key in str(config.session_secret).replace(",", " ").split():
        secrets.add("session secret", key)
    for user in (ADA, ALAN):
        secrets.add("password", user[1])
    for exchange in wire:
        if exchange.source == "entra" and exchange.path.endswith("/oauth2/v2.0/token"):
            sent = parse_qs(exchange.request_body.decode())
            for name, kind in (
                ("code", "auth code"),
                ("code_verifier", "PKCE verifier"),
                ("client_secret", "client secret"),
                ("refresh_token", "refresh token"),
            ):
                for value in sent.get(name, []):
                    secrets.add(kind, value)
            answer = json.loads(exchange.body)
            secrets.add("access token", answer.get("access_token"))
            secrets.add("refresh token", answer.get("refresh_token"))
            secrets.add("id token", answer.get("id_token"))
        elif exchange.source == "api":
            bearer = exchange.request_header("authorization") or ""
            secrets.add("access token", bearer.removeprefix("Bearer "))
        elif exchange.source == "browser":
            for name, value in exchange.headers:
                if name.lower() == "set-cookie":
                    cookie = value.partition(";")[0]
                    cookie_name, _, cookie_value = cookie.partition("=")
                    if cookie_name.strip() in (COOKIE, IDP_COOKIE):
                        secrets.add("session id", cookie_value.strip().strip('"'))
                elif name.lower() == "location":
                    query = parse_qs(urlsplit(value).query)
                    for value_ in query.get("state", []):
                        secrets.add("sign-in state", value_)
                    for value_ in query.get("code", []):
                        secrets.add("auth code", value_)
            if exchange.url.startswith(stack.idp.pages_url):  # the form_post page's fields
                for name, value in HIDDEN_RE.findall(exchange.text):
                    kind = {
                        "code": "auth code",
                        "state": "sign-in state",
                        "id_token": "id token",
                        "flow": "emulator sign-in flow",
                    }
                    secrets.add(kind[name], html.unescape(value))
            for token in CSRF_RE.findall(exchange.text):
                secrets.add("CSRF token", token)
    return secrets


# -- the person at the browser --------------------------------------------------------------------


def same_origin(stack: TodoStack) -> dict[str, str]:
    """The headers a browser adds to a form sent from one of the app's own pages."""
    return {"Origin": stack.web, "Sec-Fetch-Site": "same-origin"}


def post_form(
    b: AppBrowser, path: str, data: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """POST a form; if the app needs the person at Entra first, go there and send it again."""
    response = b.client.post(urljoin(b.stack.base, path), data=dict(data), headers=headers)
    location = response.headers.get("location", "")
    if response.status_code == 302 and location.startswith(b.stack.idp.pages_url):
        b.follow(response)
        response = b.client.post(urljoin(b.stack.base, path), data=dict(data), headers=headers)
    return response


def failing_api(environ: Any, start_response: Any) -> list[bytes]:
    """An API that fails with a stack trace in its body: the page must not show it.

    WSGI on werkzeug, not on uvicorn: a second uvicorn would configure logging again and take
    the capture off its loggers.
    """
    start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])
    return [b'Traceback (most recent call last):\n  File "/srv/api.py", line 1, in boom\n']


@dataclasses.dataclass
class Run:
    refused: Counter[str] = dataclasses.field(default_factory=Counter)


def the_day(stack: TodoStack, wire: Wire, msal_http: MsalHttpClient) -> Run:
    run = Run()
    web = stack.web
    with AppBrowser(stack) as b:  # type: ignore[arg-type]
        wire.watch(b.client)
        home = b.get("/")
        assert home.status_code == 200 and "/auth/signin" in home.text

        # Sign in. Entra's form_post is a cross-site POST: a browser sends it without the
        # SameSite=Lax cookie, so the app parks the answer and the browser comes back with a GET.
        start = b.get("/auth/signin", params={"next": "/profile"})
        assert start.status_code == 302
        result = b.pages.sign_in(start.headers["location"], email=ADA[0], password=ADA[1])
        assert result.response_mode == "form_post" and result.code
        with wire.watch(httpx.Client(timeout=20.0)) as other_site:
            parked = other_site.post(result.redirect_uri, data=result.params)
        assert parked.status_code == 303
        assert result.code not in parked.headers["location"]
        profile = b.follow(b.client.get(parked.headers["location"]))
        assert profile.status_code == 200, profile.text
        assert str(profile.url) == f"{web}/profile" and "Ada Lovelace" in profile.text

        # The todo list (Todolist.Read), two items added and one removed (Todolist.ReadWrite).
        page = b.follow(b.get("/todos"))
        assert page.status_code == 200 and "Your todo list" in page.text
        token = csrf_of(page)
        for text in ("Buy oat milk", "Call the plumber"):
            added = post_form(b, "/todos", {"description": text, "csrf_token": token})
            assert added.status_code == 303, added.text
        page = b.get("/todos")
        ids = item_ids(page)
        assert {"Buy oat milk", "Call the plumber"} <= set(ids)
        removed = post_form(
            b, f"/todos/{ids['Buy oat milk']}/remove", {"csrf_token": token}, same_origin(stack)
        )
        assert removed.status_code == 303
        page = b.get("/todos")
        assert "Buy oat milk" not in descriptions(page)
        assert "Call the plumber" in descriptions(page)
        token = csrf_of(page)

        # Forged forms: refused, and the API never hears of them.
        writes, listed = wire.writes_to_api(), descriptions(page)
        keep = item_ids(page)["Call the plumber"]
        forged = {
            "no token": ({}, {}),
            "wrong token": ({"csrf_token": "0" * 64}, {}),
            "Origin of another site": ({"csrf_token": token}, {"Origin": EVIL}),
            "Origin null": ({"csrf_token": token}, {"Origin": "null"}),
            "Sec-Fetch-Site cross-site": ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            "Sec-Fetch-Site same-site": ({"csrf_token": token}, {"Sec-Fetch-Site": "same-site"}),
        }
        for name, (fields, headers) in forged.items():
            for path in ("/todos", f"/todos/{keep}/remove"):
                data = {"description": "forged", **fields}
                answer = b.client.post(f"{web}{path}", data=data, headers=headers)
                assert answer.status_code == 400, (name, path, answer.status_code)
                assert "nothing was changed" in answer.text, (name, path)
                run.refused[f"form: {name}"] += 1
        assert wire.writes_to_api() == writes
        assert descriptions(b.get("/todos")) == listed

        # Error paths: each a page for people, never a stack trace (checked over the whole run).
        too_long = post_form(b, "/todos", {"description": "x" * 501, "csrf_token": token})
        assert too_long.status_code == 400 and "at most 500" in too_long.text
        assert b.get("/no/such/page").status_code == 404
        with wire.watch(httpx.Client(timeout=20.0)) as visitor:  # signed in, a PUT is a 400
            assert visitor.put(f"{web}/todos").status_code == 405  # (the CSRF check answers)
        assert b.client.put(f"{web}/auth/signin").status_code == 405
        assert b.client.delete(f"{web}/auth/signout").status_code == 405
        # A signed-in person reopening the callback is sent home; anyone else gets the page.
        assert b.client.get(f"{web}/auth/redirect").status_code == 302
        with wire.watch(httpx.Client(timeout=20.0, follow_redirects=True)) as stranger:
            bad_state = stranger.post(
                f"{web}/auth/redirect", data={"code": "x" * 40, "state": "A" * 43}
            )
            assert bad_state.status_code == 400 and "does not match" in bad_state.text
            assert stranger.get(f"{web}/auth/redirect").status_code == 400
            resumed = stranger.get(f"{web}/auth/redirect", params={"resume": "n" * 43})
            assert resumed.status_code == 400
        sign_in = b.get("/auth/signin", params={"next": "/todos"})
        state = parse_qs(urlsplit(sign_in.headers["location"]).query)["state"][0]
        entra_error = b.client.post(
            f"{web}/auth/redirect",
            data={"state": state, "error": "invalid_request", "error_description": "boom"},
        )
        assert entra_error.status_code == 400 and "invalid_request" in entra_error.text
        assert b.get("/auth/signin", params={"next": "//evil.example"}).status_code == 400
        sid = b.session_cookie()
        assert sid is not None
        with wire.watch(httpx.Client(timeout=20.0)) as tampered:
            forged_cookie = sid[:-1] + ("A" if sid[-1] != "A" else "B")
            answer = tampered.get(f"{web}/profile", headers={"Cookie": f"{COOKIE}={forged_cookie}"})
            assert answer.status_code == 302
            assert answer.headers["location"].startswith("/auth/signin")
            answer = tampered.get(f"{web}/", headers={"Cookie": f"{COOKIE}={forged_cookie}"})
            assert answer.status_code == 200 and "Max-Age=0" in answer.headers["set-cookie"]
        with serving_wsgi(failing_api) as broken:
            previous = stack.late.app
            stack.late.app = create_app(
                stack.web_config, api_base_url=broken, store=stack.store, http_client=msal_http
            )
            try:
                answer = b.get("/todos")
            finally:
                stack.late.app = previous
        assert answer.status_code == 502 and "had a problem" in answer.text

        # Sign-out from another site: refused with a page whose button would sign out; the
        # person stays signed in with the same session.
        for name, method, headers in (
            (
                "link from another site",
                "GET",
                {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
            ),
            ("link from a sibling site", "GET", {"Sec-Fetch-Site": "same-site"}),
            ("form on another site", "POST", {"Origin": EVIL}),
            ("form in a sandboxed frame", "POST", {"Origin": "null"}),
            ("form, both headers", "POST", {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}),
        ):
            answer = b.client.request(method, f"{web}/auth/signout", headers=headers)
            assert answer.status_code == 403, (name, answer.status_code)
            assert '<form method="post" action="/auth/signout">' in answer.text, name
            assert "location" not in answer.headers, name
            assert b.session_cookie() == sid, name
            assert b.get("/profile").status_code == 200, name
            run.refused[f"sign-out: {name}"] += 1

        # Sign-out with the button of the app's own page: here, then at the emulator, then home.
        out = b.client.post(f"{web}/auth/signout", headers=same_origin(stack))
        assert out.status_code == 302
        assert out.headers["location"].startswith(stack.idp.pages_url)
        assert b.session_cookie() is None
        back = b.client.get(out.headers["location"])
        assert back.status_code in (302, 303)
        assert back.headers["location"].startswith(f"{web}/")
        home = b.client.get(back.headers["location"])
        assert home.status_code == 200 and "Hi Ada" not in home.text
        assert b.get("/profile").status_code == 302

        # Another person signs in on the same browser (this answer comes with the cookie), sees
        # none of Ada's items, and signs out with the link of the app's pages.
        page = b.open("/todos", user=ALAN)
        assert page.status_code == 200 and "Alan Turing" in page.text
        assert "Call the plumber" not in descriptions(page)
        out = b.get("/auth/signout", headers={"Sec-Fetch-Site": "same-origin"})
        assert out.status_code == 302
        assert b.client.get(out.headers["location"]).status_code in (302, 303)
        assert b.get("/profile").status_code == 302
    return run


# -- the checks over the whole run ------------------------------------------------------------------


def no_stack_traces(wire: Wire) -> None:
    for exchange in wire:
        match = TRACE_RE.search(exchange.text)
        assert match is None, (exchange.source, exchange.method, exchange.path, exchange.status)


def no_store_where_it_matters(wire: Wire, stack: TodoStack) -> int:
    checked = 0
    for exchange in wire:
        personal = (
            exchange.source == "browser"
            and exchange.url.startswith(stack.web)
            and exchange.path.startswith("/auth/")
        )
        emulator_page = exchange.source == "browser" and exchange.url.startswith(
            stack.idp.pages_url
        )
        token = exchange.source == "entra" and exchange.path.endswith("/oauth2/v2.0/token")
        if personal or emulator_page or token:
            cache = exchange.header("cache-control") or ""
            assert "no-store" in cache, (exchange.method, exchange.url, exchange.status, cache)
            checked += 1
    return checked


def security_headers_on_pages(wire: Wire, stack: TodoStack) -> int:
    checked = 0
    for exchange in wire:
        if exchange.source != "browser" or not exchange.url.startswith(stack.web):
            continue
        where = (exchange.method, exchange.path, exchange.status)
        assert exchange.header("x-content-type-options") == "nosniff", where
        if "text/html" not in (exchange.header("content-type") or ""):
            continue
        csp = exchange.header("content-security-policy") or ""
        assert "frame-ancestors 'none'" in csp or exchange.header("x-frame-options") == "DENY"
        assert exchange.header("referrer-policy") in FRIENDLY_REFERRER_POLICIES, where
        checked += 1
    return checked


def test_nothing_leaks_over_a_whole_run(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    wire = Wire()
    with all_logs_at_debug() as logs, otel() as telemetry:
        with todo_stack(tmp_path) as stack:
            logs.sweep()  # uvicorn set up its own loggers (not propagating) while starting
            msal_http = recording_msal_client(wire, stack.idp.ca_bundle)
            stack.late.app = create_app(
                stack.web_config, api_base_url=stack.api, store=stack.store, http_client=msal_http
            )
            stack.recorder.app = ApiTap(wire, stack.recorder.app)
            run = the_day(stack, wire, msal_http)
            console = list(stack.idp.console)
        assert logs.unwatched() == [], "logging was reconfigured during the run"
        out, err = capfd.readouterr()
        pieces = [*logs.pieces(), ("stdout", out), ("stderr", err)]
        pieces += [("the emulator's console", line) for line in console]
        # What the library reported (issue 11) is checked like the logs: every span of a call to
        # the identity provider with its attributes, and every metric series' attributes.
        spans = telemetry.spans()
        pieces += [("a span", f"{s.name} {dict(s.attributes or {})!r}") for s in spans]
        series = telemetry.points()
        pieces += [("a metric", f"{name} {sorted(a)!r}") for name, v in series.items() for a in v]
        captured = "\n".join(piece for _, piece in pieces)
        secrets = collect(wire, stack)
        needles = secrets.needles()

        # The capture is real: every part of the system logged something into it...
        assert {"entra_ciam.devidp", "werkzeug", "httpx", "httpcore.http11"} <= set(logs.loggers)
        assert any(name.startswith("msal") for name in logs.loggers)
        assert "uvicorn.access" in logs.loggers  # a logger that does not propagate
        assert "/oauth2/v2.0/token 200" in captured
        # The library's own events, metrics and spans are in the capture too.
        seen = {
            line.split("extra={'event': '", 1)[1].split("'", 1)[0]
            for line in logs.lines
            if "extra={'event': '" in line
        }
        assert {"signin_started", "signin_completed", "keys_refreshed"} <= seen, seen
        assert {"entra_ciam discovery", "entra_ciam keys", "entra_ciam token"} <= {
            s.name for s in spans
        }
        assert {"entra_ciam.validations", "entra_ciam.signins"} <= set(series)
        assert "entra_ciam.token_acquisitions" in series
        # ...and the secrets are all there: each kind, and every token the API got was one the
        # token endpoint issued (so the collection missed none of the access tokens).
        by_kind = secrets.figures()
        for kind in ("access token", "refresh token", "id token", "auth code", "session id"):
            assert by_kind.get(kind, 0) >= 1, (kind, by_kind)
        assert by_kind["access token"] >= 2  # one per scope
        assert by_kind["session id"] >= 2  # the id changes at sign-in
        issued = {
            json.loads(e.body).get("access_token")
            for e in wire
            if e.source == "entra" and e.path.endswith("/token")
        }
        received = {
            (e.request_header("authorization") or "").removeprefix("Bearer ")
            for e in wire
            if e.source == "api"
        }
        assert received and received <= issued

        # The verdicts.
        found = leaks(pieces, secrets)
        assert found == [], "leaked:\n" + "\n".join(found)
        no_stack_traces(wire)
        no_store_checked = no_store_where_it_matters(wire, stack)
        pages_checked = security_headers_on_pages(wire, stack)

        # The detector can fail: plant secrets through the same channels and see each caught.
        run_records = mark = len(logs.lines)
        access = sorted(secrets.by_kind["access token"])[0]
        refresh = sorted(secrets.by_kind["refresh token"])[0]
        session = sorted(secrets.by_kind["session id"])[0]
        code = sorted(secrets.by_kind["auth code"])[0]
        signature = access.rsplit(".", 1)[1]
        logging.getLogger("examples.flask_todo").debug("form_post %s", {"code": code})
        logging.getLogger("uvicorn.access").info('"GET /?rt=%s HTTP/1.1" 200', refresh[:FRAGMENT])
        logging.getLogger("werkzeug").info("cookie %s", quote(session[-FRAGMENT:]))
        logging.getLogger("entra_ciam.signin").warning("signature %s", signature[:FRAGMENT])
        emit("signin_failed", reason=session[:FRAGMENT], status=400)  # fields are checked too
        print(f"client_secret={stack.web_config.client_secret}")
        os.write(2, f"Authorization: Bearer {access}\n".encode())
        planted_out, planted_err = capfd.readouterr()
        caught = leaks(
            [*logs.pieces(mark), ("stdout", planted_out), ("stderr", planted_err)], secrets
        )
        for planted in (
            "auth code (whole) in examples.flask_todo",
            "refresh token (prefix) in uvicorn.access",
            "session id (suffix) in werkzeug",
            "access token (signature prefix) in entra_ciam.signin",
            "session id (prefix) in entra_ciam.events",
            "client secret (whole) in stdout",
            "access token (whole) in stderr",
            "a JWT-shaped string in stderr",
        ):
            assert planted in caught, (planted, caught)
        # ...except through MSAL's own loggers, which the library masks (the run's leak: MSAL
        # logs the auth code and PKCE verifier of every code redemption at DEBUG).
        mark = len(logs.lines)
        logging.getLogger("msal.token_cache").debug("event=%s", json.dumps({"code": code}))
        assert leaks(logs.pieces(mark), secrets) == []
        assert '"code": "********"' in logs.pieces(mark)[0][1]

    requests = Counter(e.source for e in wire)
    record(
        "nothing-leaks",
        requests=len(wire),
        requests_by_source=dict(requests),
        secrets=secrets.count(),
        secrets_by_kind=by_kind,
        needles=len(needles),
        log_records=run_records,
        loggers=len(logs.loggers),
        browser_records_set_aside=logs.browser_records,
        captured_chars=len(captured),
        no_store_checked=no_store_checked,
        pages_with_security_headers=pages_checked,
        cross_site_refused=sum(run.refused.values()),
    )
    print(
        f"nothing-leaks: {len(wire)} requests {dict(requests)}, {secrets.count()} secrets "
        f"{by_kind} ({len(needles)} needles) checked against {run_records} log records from "
        f"{len(logs.loggers)} loggers ({len(captured)} chars); {no_store_checked} no-store, "
        f"{pages_checked} pages with security headers, {sum(run.refused.values())} cross-site "
        "requests refused"
    )


# -- a 503 names nothing internal (issue 16, point 5) -----------------------------------------------


def _hello_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def _hello_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_503_names_nothing_internal(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """The review's finding: with discovery unreachable, anonymous clients read
    ``GET http://127.0.0.1:1/secret-internal-path/.well-known/openid-configuration failed:
    ConnectError``. Now the client learns only that the identity provider is unavailable, and
    the log gets the event ``metadata_unavailable`` with the URL, the error and the remedy."""
    from entra_ciam import AccessTokenValidator
    from entra_ciam.asgi import BearerTokenMiddleware as AsgiBearer
    from entra_ciam.metadata import UNAVAILABLE
    from entra_ciam.wsgi import BearerTokenMiddleware as WsgiBearer
    from tests.support.todo_api import free_port, serving
    from tests.support.tokens import API_CLIENT_ID, TokenFactory

    port = free_port()  # nothing listens there
    metadata_url = f"http://127.0.0.1:{port}/secret-internal-path/.well-known/openid-configuration"
    validator = AccessTokenValidator(metadata_url=metadata_url, audience=API_CLIENT_ID)
    app: Any = (
        WsgiBearer(_hello_wsgi, validator) if kind == "wsgi" else AsgiBearer(_hello_asgi, validator)
    )
    token = TokenFactory().mint()
    caplog.set_level(logging.INFO, logger="entra_ciam")
    with serving_wsgi(app) if kind == "wsgi" else serving(app) as base:
        answers = [
            httpx.get(f"{base}/anything", headers={"Authorization": f"Bearer {token}"}, timeout=20)
            for _ in range(3)  # the first fetches and fails; the next ones back off
        ]
    for answer in answers:
        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) >= 1
        assert "www-authenticate" not in answer.headers
        assert answer.json() == {
            "error": "temporarily_unavailable",
            "error_description": UNAVAILABLE,
        }
        seen = answer.text + " " + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        for internal in ("secret-internal-path", str(port), "127.0.0.1", "ConnectError", "GET "):
            assert internal not in seen, (internal, seen)
    events = [r for r in caplog.records if r.getMessage().startswith("metadata_unavailable")]
    assert len(events) == 1, [r.getMessage() for r in caplog.records]  # once per failed fetch
    event = events[0]
    assert event.levelno == logging.ERROR
    assert vars(event)["event"] == "metadata_unavailable"
    assert vars(event)["url"] == metadata_url
    assert "ConnectError" in vars(event)["error"]
    assert "DNS, firewall, proxy" in vars(event)["remedy"]
    assert metadata_url in event.getMessage()


# -- the detector and the cross-site rule, on their own ---------------------------------------------


def test_the_detector_sees_fragments_and_encodings() -> None:
    secrets = Secrets()
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEiLCJzY3AiOiJyZWFkIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    secrets.add("access token", jwt)
    secrets.add("session secret", "a2V5LW9mLXRoZS1zZXNzaW9uLXNlY3JldC0zMi1ieXRlcw==")
    secrets.add("session id", "S3ss10n-1d-0f-f0rty-thr33-ch4r4ct3rs-l0ng-x")
    assert leaks("GET /todos 200\nrefused a form: no token", secrets) == []
    assert leaks(f"sig={jwt.rsplit('.', 1)[1][:FRAGMENT]}", secrets) == [
        "access token (signature prefix) in text"
    ]
    assert leaks("key=a2V5LW9mLXRoZS1zZXNzaW9uLXNlY3JldC0zMi1ieXRlcw%3D%3D", secrets)
    assert leaks([("log", "...0rty-thr33-ch4r4ct3rs-l0ng-x")], secrets) == [
        "session id (suffix) in log"
    ]
    assert leaks("Authorization: Bearer eyJhbGciOiJub25lIn0.e30.", Secrets())


def test_msal_debug_logs_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    import msal

    from entra_ciam.signin import msal_app  # noqa: F401 - building clients installs the filter

    caplog.set_level(logging.DEBUG, logger="msal.token_cache")
    client_info = "eyJ1aWQiOiJ1c2VyIiwidXRpZCI6InRlbmFudCJ9"  # {"uid":"user","utid":"tenant"}
    msal.TokenCache().add(
        {
            "client_id": "client",
            "scope": ["api://todo/Todolist.Read"],
            "token_endpoint": "https://login.example/tenant/oauth2/v2.0/token",
            "grant_type": "authorization_code",
            "params": None,
            "data": {"code": "the-code-0123456789abcdef", "code_verifier": "verifier-0123456789"},
            "response": {
                "access_token": "at-0123456789",
                "token_type": "Bearer",
                "expires_in": 3600,
                "client_info": client_info,
            },
        }
    )
    assert "event=" in caplog.text and '"code": "********"' in caplog.text
    for secret in ("the-code-0123456789", "verifier-0123456789", client_info, "at-0123456789"):
        assert secret not in caplog.text
    assert msal_logging.redact("a=1&code=abc&x=eyJhbGci.eyJ9.c2ln 'password': 'p'") == (
        "a=1&code=********&x=******** 'password': '********'"
    )


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        ("GET", {}, False),  # a program, or a browser too old to say
        ("GET", {"fetch_site": "same-origin"}, False),
        # typed in, a bookmark, a mail program's link: and kept through another site's redirect
        ("GET", {"fetch_site": "none"}, True),
        ("GET", {"fetch_site": "cross-site"}, True),
        ("GET", {"fetch_site": "same-site"}, True),
        ("GET", {"fetch_site": "same-origin, cross-site"}, True),  # repeated: unknown
        ("POST", {"origin": "http://127.0.0.1:3000"}, False),
        ("POST", {"origin": "https://app.contoso.example"}, False),  # the configured origin
        ("POST", {"origin": "https://app.contoso.example:443"}, False),
        ("POST", {"origin": "http://127.0.0.1:3001"}, True),
        ("POST", {"origin": EVIL}, True),
        ("POST", {"origin": "null"}, True),
        ("POST", {"origin": "evil"}, True),
        ("POST", {"origin": EVIL, "fetch_site": "same-origin"}, False),  # fetch metadata wins
        ("POST", {"origin": "http://127.0.0.1:3000", "fetch_site": "cross-site"}, True),
    ],
)
def test_the_cross_site_rule(method: str, headers: dict[str, str], refused: bool) -> None:
    request = Request(method, "/auth/signout", host="127.0.0.1:3000", **headers)
    reason = cross_site_reason(request, {"https://app.contoso.example"})
    assert (reason is not None) is refused, reason


# -- sign-out resists cross-site requests in both adapters ------------------------------------------


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_sign_out_cannot_be_forged_cross_site(kind: str, tmp_path: Path) -> None:
    with signin_stack(kind, tmp_path, BUILDERS[kind]) as stack, stack.browser() as browser:
        browser.sign_in()
        sid = browser.session_cookie()
        for method, headers in (
            ("GET", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}),
            ("GET", {"Sec-Fetch-Site": "same-site"}),
            ("POST", {"Origin": EVIL}),
            ("POST", {"Origin": "null"}),
        ):
            answer = browser.client.request(method, f"{stack.base}/auth/signout", headers=headers)
            assert answer.status_code == 403, (method, headers)
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["referrer-policy"] == "same-origin"  # the button keeps Origin
            assert '<form method="post" action="/auth/signout">' in answer.text
            assert browser.session_cookie() == sid
            assert browser.get("/").json() == {"user": ADA[2]}
        # The page's own button (same origin) and a same-origin link both sign out.
        out = browser.client.post(
            f"{stack.base}/auth/signout",
            headers={"Origin": stack.base, "Sec-Fetch-Site": "same-origin"},
        )
        assert out.status_code == 302 and out.headers["location"].startswith(stack.idp.pages_url)
        assert browser.get("/").json() == {"user": None}
        browser.sign_in()
        link = browser.get("/auth/signout", headers={"Sec-Fetch-Site": "same-origin"})
        assert link.status_code == 302
        assert browser.get("/").json() == {"user": None}


# -- and in a real browser: another site cannot sign the person out -----------------------------------


def other_site(web: str) -> Any:
    """Pages of another site, each trying to sign the visitor out of ``web``."""
    pages = {
        "/link": f'<a id="go" href="{web}/auth/signout">You won a prize</a>',
        "/form": f'<form method="post" action="{web}/auth/signout"><button id="go">Go</button></form>',
    }

    def app(environ: Any, start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/redirect":
            start_response("302 Found", [("Location", f"{web}/auth/signout")])
            return [b""]
        body = f"<!doctype html><html><body>{pages.get(path, '')}</body></html>".encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    return app


class SignOutHeaders:
    """Wraps the web app to note what the browser said of each request to /auth/signout."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, str]] = []  # (method, Sec-Fetch-Site, Origin)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/auth/signout":
            self.seen.append(
                (
                    environ["REQUEST_METHOD"],
                    environ.get("HTTP_SEC_FETCH_SITE", ""),
                    environ.get("HTTP_ORIGIN", ""),
                )
            )
        return self.app(environ, start_response)


@pytest.mark.browser
def test_another_site_cannot_sign_a_real_browser_out(tmp_path: Path) -> None:
    executable = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with todo_stack(tmp_path) as stack, sync_playwright() as playwright:
        web = stack.web
        headers = SignOutHeaders(stack.late.app)
        stack.late.app = headers
        # The web app is on 127.0.0.1; "localhost" is another site to the browser.
        with serving_wsgi(other_site(web)) as served:
            elsewhere = served.replace("127.0.0.1", "localhost")
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_context().new_page()
                page.set_default_timeout(15_000)
                page.goto(f"{web}/profile")
                page.wait_for_url(f"{stack.idp.pages_url}/**")
                page.fill("#email", ADA[0])
                page.get_by_role("button", name="Next").click()
                page.fill("#password", ADA[1])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{web}/profile")

                for attack in ("/redirect", "/link", "/form"):
                    page.goto(f"{elsewhere}{attack}")
                    if attack != "/redirect":
                        page.click("#go")
                    page.wait_for_url(f"{web}/auth/signout")
                    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out?")
                    page.goto(f"{web}/profile")  # still signed in: no trip to the emulator
                    expect(page.locator("table.claims")).to_contain_text(ADA[0])

                # The page's button, pressed by the person, signs out.
                page.goto(f"{elsewhere}/link")
                page.click("#go")
                page.get_by_role("button", name="Sign out").click()
                page.wait_for_url(f"{web}/")
                expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
            finally:
                chromium.close()
    # What Chromium said: "none" when the person went to the other site and it redirected (the
    # navigation was theirs), another site for its link and its form (whose POST names it), this
    # site for the button.
    assert headers.seen[:3] == [
        ("GET", "none", ""),
        ("GET", "cross-site", ""),
        ("POST", "cross-site", elsewhere),
    ]
    assert headers.seen[-1] == ("POST", "same-origin", web)
