"""Sign-in end to end: the emulator, the todo API and a web app, all real, on loopback.

``signin_stack`` starts them in the order their URLs depend on: the web app's server first (its
port goes into the emulator's redirect URIs), then the emulator, then the todo API, and only then
builds the web app itself. ``AppBrowser`` is one browser for all three (one cookie jar), filling in
the emulator's pages like a person would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from werkzeug.serving import make_server

from entra_ciam import EntraConfig
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.testing import Browser as PagesBrowser
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.devidp.tls import TlsFiles, ensure_tls, server_ssl_context
from entra_ciam.sessions import default_cookie_name
from tests.support.external import RedisChild
from tests.support.todo_api import serving

READ = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.Read"
READWRITE = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.ReadWrite"
ADA = defaults.USERS[0]
ALAN = defaults.USERS[1]
# Refresh tokens that are dead on arrival: any scope not already in the user's cache needs the
# user again, as a scope still needing consent does in Entra. Cached access tokens still serve.
REFRESH_TOKEN_LIFETIME = 0


class LateWSGI:
    """A WSGI app whose real app is set once the URLs it needs are known."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


class LateASGI:
    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@contextlib.contextmanager
def serving_wsgi(app: Any, *, tls: TlsFiles | None = None) -> Iterator[str]:
    """A threaded Werkzeug server on a free loopback port; yields its base URL (https with
    ``tls``)."""
    context = None if tls is None else server_ssl_context(tls)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclasses.dataclass
class Stack:
    idp: DevIdp
    base: str  # the web app
    api: str  # the todo API's list URL
    late: Any
    tmp: Path

    def config(self, **overrides: Any) -> EntraConfig:
        from cryptography.fernet import Fernet

        settings: dict[str, Any] = {
            "session_store": f"sqlite:///{self.tmp / 'sessions.db'}",
            "redirect_uri": f"{self.base}/auth/redirect",
            "post_logout_redirect_uri": f"{self.base}/",
            "session_secret": Fernet.generate_key().decode(),
        }
        settings.update(overrides)
        return self.idp.entra_config("web-app", **settings)

    def browser(self) -> AppBrowser:
        return AppBrowser(self)


@contextlib.contextmanager
def signin_stack(
    kind: str,
    tmp: Path,
    build: Callable[[Stack], Any],
    *,
    app_host: str = "127.0.0.1",
    tls: bool = False,
) -> Iterator[Stack]:
    """Emulator + todo API + the web app ``build(stack)`` returns, served as ``kind`` (wsgi/asgi).

    ``app_host`` names the web app in its URLs: ``localhost`` makes it another site than the
    emulator's pages on 127.0.0.1, as in production (its server listens on 127.0.0.1 anyway).
    ``tls`` serves the web app over https with the emulator's certificate (made first, in the
    emulator's state folder, so both share one CA that ``AppBrowser`` trusts).
    """
    from examples.starlette_api import create_app

    state_dir = tmp / f"devidp-{kind}" if tls else None
    files = ensure_tls(StateDir(state_dir)) if state_dir is not None else None
    late: Any = LateWSGI() if kind == "wsgi" else LateASGI()
    server = serving_wsgi(late, tls=files) if kind == "wsgi" else serving(late, tls=files)
    with server as served:
        base = served.replace("127.0.0.1", app_host)
        with running_devidp(
            extra_redirect_uris=[f"{base}/auth/redirect"],
            extra_post_logout_redirect_uris=[f"{base}/"],
            lifetimes={"refresh_token": REFRESH_TOKEN_LIFETIME},
            state_dir=None if state_dir is None else str(state_dir),
        ) as idp:
            api_config = EntraConfig(
                authority=idp.authority,
                api_client_id=defaults.TODO_API_CLIENT_ID,
                ca_bundle=idp.ca_bundle,
            )
            with serving(create_app(api_config, db_path=tmp / "todo.sqlite3")) as api_base:
                stack = Stack(idp, base, f"{api_base}/api/todolist", late, tmp)
                late.app = build(stack)
                yield stack


class AppBrowser:
    """One person's browser: the web app, the emulator's pages, one cookie jar."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        https = stack.base.startswith("https:")
        # The web app's default session cookie name: __Host- on https.
        self.cookie_name = default_cookie_name(secure=https)
        verify: ssl.SSLContext | bool = True
        if https:  # served with the emulator's certificate
            verify = ssl.create_default_context(cafile=stack.idp.ca_bundle)
        self.client = httpx.Client(follow_redirects=False, timeout=20.0, verify=verify)
        self.pages = PagesBrowser(self.client)
        self.visited: list[str] = []

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> AppBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(urljoin(self.stack.base, path), **kwargs)

    def session_cookie(self, name: str | None = None) -> str | None:
        name = name or self.cookie_name
        for cookie in self.client.cookies.jar:
            if cookie.name == name:
                return cookie.value
        return None

    def set_session_cookie(self, value: str, name: str | None = None) -> None:
        name = name or self.cookie_name
        self.client.cookies.delete(name)
        self.client.cookies.set(name, value, domain="127.0.0.1", path="/")

    def follow(
        self, response: httpx.Response, *, user: tuple[str, str, str] = ADA, hops: int = 12
    ) -> httpx.Response:
        """Follow redirects like a browser, signing in as ``user`` when the emulator asks."""
        pages = self.stack.idp.pages_url
        for _ in range(hops):
            if response.status_code not in (301, 302, 303, 307):
                return response
            location = urljoin(str(response.url), response.headers["location"])
            self.visited.append(location)
            if location.startswith(pages) and urlsplit(location).path.endswith("/authorize"):
                result = self.pages.sign_in(location, email=user[0], password=user[1])
                if result.response_mode == "form_post":
                    response = self.client.post(result.redirect_uri, data=result.params)
                else:
                    response = self.client.get(result.url)
                self.visited.append(result.redirect_uri)
            else:
                response = self.client.get(location)
        raise AssertionError(f"too many redirects: {self.visited}")

    def open(self, path: str, *, user: tuple[str, str, str] = ADA) -> httpx.Response:
        """Open a page of the web app, signing in on the way if it sends us there."""
        return self.follow(self.get(path), user=user)

    def sign_in(
        self, *, user: tuple[str, str, str] = ADA, next_path: str = "/me"
    ) -> httpx.Response:
        return self.follow(self.get("/auth/signin", params={"next": next_path}), user=user)


class RoundRobin:
    """Two or more app instances behind one address, taking turns like a load balancer."""

    def __init__(self, apps: list[Any]) -> None:
        self.apps = apps
        self.served = [0] * len(apps)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def _next(self) -> Any:
        with self._lock:
            index = next(self._turn) % len(self.apps)
            self.served[index] += 1
        return self.apps[index]

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self._next()(environ, start_response)


@contextlib.contextmanager
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server on a free port (so a test may stop it); yields (url, process)."""
    with RedisChild() as child:
        assert child.proc is not None
        yield f"{child.url}?timeout=1", child.proc
