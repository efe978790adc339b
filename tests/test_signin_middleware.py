"""Sign-in end to end behind ``entra_ciam.wsgi.SignInMiddleware`` (Flask on a threaded Werkzeug
server) and ``entra_ciam.asgi.SignInMiddleware`` (Starlette on uvicorn): one suite, both kinds.

Real MSAL against the local emulator, the todo API as the protected endpoint, Flask configured as
in production (its own error handler, exceptions not propagated) and Starlette with the
middleware inside its own error handling, async and sync endpoints.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from entra_ciam.asgi import SignInMiddleware as AsgiSignIn
from entra_ciam.sessions import MemoryStore, SessionStoreUnavailableError
from entra_ciam.sessions.base import Apply, SessionData
from entra_ciam.signin.context import current_context
from entra_ciam.wsgi import SignInMiddleware as WsgiSignIn
from tests.support import signin_scenarios as scenarios
from tests.support.asgi import call_asgi, http_scope, response_of
from tests.support.external import require_redis
from tests.support.fake_entra import make_signin
from tests.support.signin_apps import BUILDERS, flask_app
from tests.support.webapps import RoundRobin, Stack, signin_stack

KINDS = list(BUILDERS)  # wsgi: Flask, asgi: Starlette


@pytest.fixture(scope="module", params=KINDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = str(request.param)
    tmp: Path = tmp_path_factory.mktemp(f"signin-{kind}")
    with signin_stack(kind, tmp, BUILDERS[kind]) as running:
        yield running


def test_sign_in_then_the_session_survives(stack: Stack) -> None:
    scenarios.sign_in_and_session_survives(stack)


def test_user_token_is_accepted_by_the_validator_and_the_api(stack: Stack) -> None:
    scenarios.user_token_is_accepted(stack)


def test_incremental_consent_redirects_and_returns(stack: Stack) -> None:
    scenarios.incremental_consent_redirects_and_returns(stack)


def test_redirect_happens_even_if_the_view_swallows_the_exception(stack: Stack) -> None:
    scenarios.redirect_happens_even_if_the_view_swallows(stack)


def test_anonymous_token_request_signs_in_first(stack: Stack) -> None:
    scenarios.anonymous_token_request_signs_in_first(stack)


def test_sign_out_clears_everything(stack: Stack) -> None:
    scenarios.sign_out_clears_everything(stack)


@pytest.mark.parametrize("kind", KINDS)
def test_redis_going_away_is_a_503_page(kind: str, tmp_path: Path) -> None:
    scenarios.redis_going_away_is_a_503_page(kind, tmp_path, BUILDERS[kind])


# -- sessions in Redis: several instances (WSGI, behind a round-robin balancer) --------------------


def test_two_app_instances_share_one_session_through_redis(tmp_path: Path) -> None:
    require_redis()
    url = f"redis://127.0.0.1:6379/0?prefix=test-signin-{secrets.token_hex(4)}:"

    def two_instances(stack: Stack) -> RoundRobin:
        config = stack.config(session_store=url)  # one Fernet key for both, as in production
        return RoundRobin([flask_app(stack, config=config) for _ in range(2)])

    with signin_stack("wsgi", tmp_path, two_instances) as stack, stack.browser() as browser:
        balancer: RoundRobin = stack.late.app
        page = browser.sign_in()  # sign-in and redirect land on different instances
        assert page.status_code == 200
        names = {browser.get("/me").json()["name"] for _ in range(6)}
        assert names == {"Ada Lovelace"}
        assert browser.get("/todos").json()["status"] == 200
        assert min(balancer.served) >= 4


# -- the end of a page: the app's answer, our cookie, a store that fails (WSGI and ASGI) ----------


class _FailingStore(MemoryStore):
    """A store that does not block (saved in the request's own thread) and fails on demand."""

    failing = False

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        if self.failing:
            raise SessionStoreUnavailableError("the store went away")
        super().set(sid, data, ttl)

    def update(self, sid: str, apply: Apply, ttl: float) -> SessionData | None:
        if self.failing:
            raise SessionStoreUnavailableError("the store went away")
        return super().update(sid, apply, ttl)


def _page(kind: str, store: MemoryStore) -> Callable[[], tuple[int, list[tuple[str, str]], bytes]]:
    """A page that writes to a new visitor's session, behind the sign-in middleware of ``kind``,
    called the way its server would: one request, its status, headers and body."""
    signin = make_signin(store)

    def note() -> None:
        ctx = current_context()
        assert ctx is not None
        ctx.session["note"] = "kept"

    if kind == "wsgi":

        def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            note()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"the app's answer"]

        wsgi = WsgiSignIn(wsgi_app, signin=signin)

        def call_wsgi() -> tuple[int, list[tuple[str, str]], bytes]:
            started: list[Any] = []
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/page", "wsgi.input": io.BytesIO()}
            body = b"".join(wsgi(environ, lambda *args: started.append(args)))
            return int(started[0][0].split()[0]), list(started[0][1]), body

        return call_wsgi

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        note()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"the app's answer"})

    asgi = AsgiSignIn(asgi_app, signin=signin)

    def call_page() -> tuple[int, list[tuple[str, str]], bytes]:
        return response_of(asyncio.run(call_asgi(asgi, http_scope("/page"))))

    return call_page


@pytest.mark.parametrize("kind", KINDS)
def test_the_session_cookie_joins_the_apps_own_headers(kind: str) -> None:
    status, headers, body = _page(kind, _FailingStore())()
    assert (status, body) == (200, b"the app's answer")
    names = [name.lower() for name, _ in headers]
    assert names.count("content-type") == 1
    cookies = [value for name, value in headers if name.lower() == "set-cookie"]
    assert len(cookies) == 1 and cookies[0].startswith("entra_ciam_session=")


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_failing_at_the_save_replaces_the_apps_answer_with_a_503(kind: str) -> None:
    store = _FailingStore()
    store.failing = True
    status, headers, body = _page(kind, store)()
    assert status == 503
    assert b"Sessions cannot be stored right now" in body
    assert b"the app's answer" not in body  # nothing of the replaced answer goes out
    assert not [value for name, value in headers if name.lower() == "set-cookie"]
    assert dict((k.lower(), v) for k, v in headers)["retry-after"]
