"""Run the emulator inside a test, and play the person at the browser over plain HTTP.

``running_devidp()`` starts it on free ports in a thread with a throwaway state folder and test
mode on; ``token_requests(idp)`` says how many token requests of each grant type reached it. ``Browser`` follows the sign-in and sign-up pages the way a person would (reading each
form, keeping cookies) and stops at the redirect to the app, returning the code and state.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp

__all__ = [
    "Browser",
    "SignInError",
    "SignInResult",
    "running_devidp",
    "sign_in",
    "token_requests",
]

# The emulator's https origin redirects these to its pages origin: a browser follows.
_EMULATOR_HOPS = ("/oauth2/v2.0/authorize", "/oauth2/v2.0/logout")


@contextlib.contextmanager
def running_devidp(
    registrations: Registrations | None = None,
    *,
    extra_redirect_uris: Sequence[str] = (),
    extra_post_logout_redirect_uris: Sequence[str] = (),
    lifetimes: Mapping[str, int] | None = None,
    state_dir: str | None = None,
    test_mode: bool = True,
    announce: Callable[[str], None] | None = None,
    one_time_refresh_tokens: bool = False,
) -> Iterator[DevIdp]:
    """Start the emulator on free loopback ports; stop it and delete its state on exit.

    Without ``registrations``, the built-in tenant is used, extended with the extra redirect URIs
    and lifetimes given. Announcements (passcodes, rotations) go to ``DevIdp.console`` and, if
    given, to ``announce``; nothing is printed. Refresh tokens may be reused as in Entra;
    ``one_time_refresh_tokens`` makes them single use, a reuse revoking the sign-in.
    """
    if registrations is None:
        registrations = Registrations.from_mapping(
            default_mapping(
                extra_redirect_uris=extra_redirect_uris,
                extra_post_logout_redirect_uris=extra_post_logout_redirect_uris,
                lifetimes=lifetimes,
            )
        )
    elif extra_redirect_uris or extra_post_logout_redirect_uris or lifetimes:
        raise ValueError("pass either registrations or extra_*/lifetimes, not both")
    if one_time_refresh_tokens:
        registrations = registrations.with_one_time_refresh_tokens()
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="devidp-"))
        idp = DevIdp(
            registrations,
            state_dir=state_dir,
            port=0,
            pages_port=0,
            test_mode=test_mode,
            announce=announce or (lambda line: None),
        )
        with idp:
            yield idp


def token_requests(idp: DevIdp, *, reset: bool = False) -> dict[str, dict[str, int]]:
    """Token requests that reached the emulator: ``{"requested": {...}, "issued": {...}}``.

    Keys are grant types (``refresh_token``, ``authorization_code``...); ``requested`` counts
    every request naming the grant, ``issued`` those answered with tokens. ``reset`` starts the
    counts again from zero after reading them.
    """
    counts = idp.provider.tokens.counts
    snapshot = counts.snapshot()
    if reset:
        counts.reset()
    return snapshot


# -- the browser -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SignInResult:
    """Where the emulator sent the browser back to the app, and with what."""

    redirect_uri: str  # the app's redirect URI, without the response parameters
    params: dict[str, str]  # code, state, session_state; or error, error_description, state
    response_mode: str  # "query", "fragment" or "form_post"

    @property
    def code(self) -> str | None:
        return self.params.get("code")

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def error(self) -> str | None:
        return self.params.get("error")

    @property
    def url(self) -> str:
        """The full redirect a browser would now follow: the parameters in the fragment for
        ``fragment``, in the query otherwise (``form_post`` delivers the same parameters)."""
        query = httpx.QueryParams(self.params)
        if self.response_mode == "fragment":
            return f"{self.redirect_uri}#{query}"
        return f"{self.redirect_uri}{'&' if '?' in self.redirect_uri else '?'}{query}"


class SignInError(AssertionError):
    """The pages refused (wrong password, unknown user, bad request...): ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclasses.dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str]
    form_id: str | None


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.errors: list[str] = []
        self.texts: list[str] = []
        self._in_error = False
        self._in_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                _Form(a.get("action", ""), a.get("method", "get").lower(), {}, a.get("id"))
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "p" and "error" in a.get("class", "").split():
            self._in_error = True
        elif tag in ("h1", "p"):
            self._in_text = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "h1"):
            self._in_error = self._in_text = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.errors.append(data.strip())
        elif self._in_text and data.strip():
            self.texts.append(" ".join(data.split()))


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


class Browser:
    """A cookie-keeping HTTP client that fills in the emulator's pages like a person would."""

    def __init__(
        self, client: httpx.Client | None = None, *, verify: bool | str | ssl.SSLContext = True
    ) -> None:
        """``verify`` (the emulator's CA bundle path) lets it open URLs on the https origin too."""
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        self.client = client or httpx.Client(follow_redirects=False, timeout=10.0, verify=verify)
        self._owns_client = client is None
        # The last responses, newest last, for tests that check headers along the way.
        self.history: collections.deque[httpx.Response] = collections.deque(maxlen=20)
        self.client.event_hooks["response"].append(self.history.append)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sign_in(self, auth_uri: str, *, email: str, password: str) -> SignInResult:
        """Open ``auth_uri``, enter email then password, and return the redirect to the app.

        If the emulator already has a session for this browser, no page is shown and the
        result comes straight back. Errors redirected to the app are results too; refusals
        shown on the pages raise SignInError.
        """
        response = self._open(auth_uri)
        outcome = self._outcome(response)
        if outcome is not None:
            return outcome
        response = self._submit(response, "/login/email", {"email": email})
        self._expect_page(response)
        response = self._submit(response, "/login/password", {"password": password})
        return self._finish(response)

    def sign_up(
        self,
        auth_uri: str,
        *,
        email: str,
        password: str,
        display_name: str,
        read_otp: Callable[[str], str | None],
    ) -> SignInResult:
        """Sign up through "No account? Create one"; ``read_otp(email)`` plays the mailbox."""
        response = self._open(auth_uri)
        outcome = self._outcome(response)
        if outcome is not None:
            return outcome
        signup = self._link(response, "/signup")
        response = self.client.get(signup)
        self._expect_page(response)
        response = self._submit(response, "/signup/email", {"email": email})
        self._expect_page(response)
        code = read_otp(email)
        if code is None:
            raise SignInError(response.status_code, f"no passcode was sent to {email}")
        response = self._submit(response, "/signup/code", {"otp": code})
        self._expect_page(response)
        response = self._submit(
            response, "/signup/details", {"password": password, "display_name": display_name}
        )
        return self._finish(response)

    def pick_account(self, auth_uri: str, email: str) -> SignInResult:
        """Open ``auth_uri`` and choose ``email`` on Entra's account picker (no password)."""
        response = self._open(auth_uri)
        outcome = self._outcome(response)
        if outcome is not None:
            return outcome
        page = _parse(response.text)
        for form in page.forms:
            if form.action.endswith("/login/select") and form.fields.get("email") == email:
                chosen = self.client.post(urljoin(str(response.url), form.action), data=form.fields)
                return self._finish(chosen)
        raise SignInError(response.status_code, f"the page offers no signed-in account {email}")

    def sign_out(self, logout_url: str) -> httpx.Response:
        """Open a logout URL (on either origin) and return where the emulator answered."""
        return self._open(logout_url)

    # -- steps ------------------------------------------------------------------------------

    def _open(self, url: str) -> httpx.Response:
        """GET ``url``, following the emulator's own hop from its https origin to its pages."""
        response = self.client.get(url)
        for _ in range(3):
            if response.status_code not in (302, 307):
                break
            location = urljoin(str(response.url), response.headers["location"])
            if not urlsplit(location).path.endswith(_EMULATOR_HOPS):
                break
            response = self.client.get(location)
        return response

    def _outcome(self, response: httpx.Response) -> SignInResult | None:
        """A redirect or form_post back to the app, or None when a page wants input."""
        if response.status_code in (301, 302, 303, 307):
            location = urljoin(str(response.url), response.headers["location"])
            if "#" in location:  # response_mode=fragment: the parameters never reach a server
                base, _, fragment = location.partition("#")
                params = dict(parse_qsl(fragment, keep_blank_values=True))
                return SignInResult(base, params, "fragment")
            base, _, query = location.partition("?")
            return SignInResult(base, dict(parse_qsl(query, keep_blank_values=True)), "query")
        if response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
            page = _parse(response.text)
            for form in page.forms:
                if form.form_id == "response":
                    return SignInResult(form.action, dict(form.fields), "form_post")
            return None
        self._raise(response)
        return None  # pragma: no cover - _raise always raises

    def _finish(self, response: httpx.Response) -> SignInResult:
        outcome = self._outcome(response)
        if outcome is None:
            self._raise(response)
        assert outcome is not None
        return outcome

    def _expect_page(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            self._raise(response)

    def _submit(self, response: httpx.Response, action_suffix: str, values: dict[str, str]) -> Any:
        page = _parse(response.text)
        for form in page.forms:
            if form.action.endswith(action_suffix) and form.method == "post":
                data = {**form.fields, **values}
                return self.client.post(urljoin(str(response.url), form.action), data=data)
        raise SignInError(response.status_code, f"the page has no form posting to {action_suffix}")

    def _link(self, response: httpx.Response, path_suffix: str) -> str:
        marker = 'href="'
        for chunk in response.text.split(marker)[1:]:
            href = chunk.split('"', 1)[0].replace("&amp;", "&")
            if urlsplit(href).path.endswith(path_suffix):
                return urljoin(str(response.url), href)
        raise SignInError(response.status_code, f"the page has no link to {path_suffix}")

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        message = "unexpected response"
        if "json" in response.headers.get("content-type", ""):
            message = response.text
        elif response.text:
            page = _parse(response.text)
            message = " ".join(page.errors) or " ".join(page.texts[:3]) or message
        raise SignInError(response.status_code, message)


def sign_in(
    auth_uri: str, *, email: str, password: str, client: httpx.Client | None = None
) -> SignInResult:
    """One sign-in with a fresh browser.

    Pass ``result.params`` to MSAL's ``acquire_token_by_auth_code_flow(flow, ...)``.
    """
    with Browser(client) as browser:
        return browser.sign_in(auth_uri, email=email, password=password)
