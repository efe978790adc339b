"""``REQUEST``: the library's state for one request, one value, restored after the block."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Callable
from typing import Any

import pytest

from entra_ciam.context import claims_context, get_claims
from entra_ciam.frameworks import PLAIN, current_integration
from entra_ciam.requeststate import NOTHING, REQUEST, RequestState, bound
from entra_ciam.signin.context import current_context
from tests.support.asgi import call_asgi, http_scope, response_of


def outer() -> RequestState:
    return RequestState(PLAIN, None, {"sub": "outer"})


def inner() -> RequestState:
    return RequestState(None, None, {"sub": "inner"})


def test_nothing_is_current_outside_a_request() -> None:
    assert REQUEST.get() is NOTHING
    assert (current_integration(), current_context(), get_claims()) == (None, None, None)


def test_state_holds_inside_the_block_and_is_restored_after() -> None:
    first, second = outer(), inner()
    with bound(first):
        assert REQUEST.get() is first
        assert current_integration() is PLAIN and get_claims() == {"sub": "outer"}
        with bound(second):
            assert REQUEST.get() is second
        assert REQUEST.get() is first and get_claims() == {"sub": "outer"}
    assert REQUEST.get() is NOTHING


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), bound(outer()):
        raise RuntimeError("boom")
    assert REQUEST.get() is NOTHING


def test_claims_context_keeps_what_an_outer_middleware_set() -> None:
    with bound(outer()), claims_context({"sub": "api"}):
        assert current_integration() is PLAIN
        assert get_claims() == {"sub": "api"}
    assert REQUEST.get() is NOTHING


def test_each_task_sees_only_its_own_request() -> None:
    async def request(state: RequestState) -> RequestState:
        with bound(state):
            await asyncio.sleep(0.01)  # the other task binds its state meanwhile
            return REQUEST.get()

    first, second = outer(), inner()

    async def both() -> list[RequestState]:
        return list(await asyncio.gather(request(first), request(second)))

    assert asyncio.run(both()) == [first, second]


def test_a_copied_context_carries_the_state_into_a_worker() -> None:
    state = outer()
    with bound(state):
        copied = contextvars.copy_context()
    assert copied.run(REQUEST.get) is state
    assert REQUEST.get() is NOTHING


def test_a_context_captured_during_the_request_holds_nothing_after_it() -> None:
    # A server's callbacks capture the context while the request runs (uvicorn's keep-alive
    # timer, for seconds): once the request is over they must not keep its user alive.
    state = RequestState(PLAIN, None, {"sub": "user"})
    with bound(state):
        captured = contextvars.copy_context()
        assert captured.run(get_claims) == {"sub": "user"}
    assert captured.run(get_claims) is None
    assert captured.run(REQUEST.get).integration is PLAIN  # the framework is no secret


def test_nothing_is_never_ended() -> None:
    with bound(RequestState(PLAIN)):
        pass
    assert (NOTHING.integration, NOTHING.signin, NOTHING.claims) == (None, None, None)


def _one_request(
    kind: str, wrap: Callable[[Any], Any], note: Callable[[], None], headers: dict[str, str]
) -> int:
    """The status of one request to an app that calls ``note()`` and answers 204, behind the
    middleware ``wrap`` makes, driven as a WSGI or an ASGI server would (body read and closed)."""
    if kind == "wsgi":

        def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            note()
            start_response("204 No Content", [])
            return []

        environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/page"}
        environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        statuses: list[str] = []
        body = wrap(wsgi_app)(environ, lambda status, *args: statuses.append(status))
        try:
            assert b"".join(body) == b""
        finally:
            body.close()
        return int(statuses[0].split()[0])

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        note()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    sent = asyncio.run(call_asgi(wrap(asgi_app), http_scope("/page", headers=raw)))
    return response_of(sent)[0]


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_sign_in_middleware_ends_the_state_of_its_requests(kind: str) -> None:
    from entra_ciam.asgi import SignInMiddleware as AsgiSignIn
    from entra_ciam.sessions import MemoryStore
    from entra_ciam.wsgi import SignInMiddleware as WsgiSignIn
    from tests.support.fake_entra import make_signin

    middleware = WsgiSignIn if kind == "wsgi" else AsgiSignIn
    captured: list[contextvars.Context] = []

    def note() -> None:
        assert current_context() is not None  # the request's sign-in state, while it runs
        captured.append(contextvars.copy_context())  # as a server's timer or a task would

    signin = make_signin(MemoryStore())
    wrap = lambda app: middleware(app, signin=signin)  # noqa: E731
    assert _one_request(kind, wrap, note, {}) == 204
    assert captured[0].run(current_context) is None


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_bearer_middleware_ends_the_state_of_its_requests(kind: str) -> None:
    from entra_ciam.asgi import BearerTokenMiddleware as AsgiBearer
    from entra_ciam.wsgi import BearerTokenMiddleware as WsgiBearer
    from tests.support.rejections import running_tenant

    middleware = WsgiBearer if kind == "wsgi" else AsgiBearer
    captured: list[contextvars.Context] = []

    def note() -> None:
        assert get_claims() is not None  # the request's claims, while it runs
        captured.append(contextvars.copy_context())

    with running_tenant() as tenant:
        wrap = lambda app: middleware(app, tenant.validator)  # noqa: E731
        headers = {"Authorization": f"Bearer {tenant.user_token()}"}
        assert _one_request(kind, wrap, note, headers) == 204
    assert captured[0].run(get_claims) is None


def _signed_in_cookie(signin: Any) -> str:
    from entra_ciam.signin.context import USER_KEY

    session = signin.sessions.new()
    session[USER_KEY] = {"sub": "user", "name": "Ada"}
    cookie = signin.sessions.commit(session)
    assert cookie is not None
    return str(cookie.split(";")[0])


def test_a_signed_in_wsgi_request_leaves_no_cycle_for_the_collector() -> None:
    # Garbage in a cycle lives until the collector runs; on every request, it ran it twice as
    # often (a request view that held the environ, which holds the request's context).
    from entra_ciam.sessions import MemoryStore
    from entra_ciam.signin.context import current_user
    from entra_ciam.wsgi import SignInMiddleware
    from tests.support.fake_entra import make_signin

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        user = current_user()
        assert user is not None
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(user["name"]).encode()]

    middleware = SignInMiddleware(app, signin=make_signin(MemoryStore()))
    cookie = _signed_in_cookie(middleware.signin)

    def one() -> bytes:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/page", "HTTP_COOKIE": cookie}
        return b"".join(middleware(environ, lambda status, headers, exc_info=None: None))

    assert one() == b"Ada"
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            assert one() == b"Ada"
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_signed_in_asgi_request_leaves_no_cycle_for_the_collector() -> None:
    from entra_ciam.asgi import SignInMiddleware
    from entra_ciam.sessions import MemoryStore
    from entra_ciam.signin.context import current_user
    from tests.support.fake_entra import make_signin

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        user = current_user()
        assert user is not None
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(user["name"]).encode()})

    middleware = SignInMiddleware(app, signin=make_signin(MemoryStore()))
    cookie = _signed_in_cookie(middleware.signin).encode()
    bodies: list[bytes] = []

    async def requests(count: int) -> None:
        for _ in range(count):
            scope = http_scope("/page", headers=[(b"cookie", cookie)])
            bodies.append(response_of(await call_asgi(middleware, scope))[2])

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(requests(1))
        gc.collect()
        gc.disable()
        try:
            loop.run_until_complete(requests(20))
            assert gc.collect() == 0
        finally:
            gc.enable()
    finally:
        loop.close()
    assert bodies == [b"Ada"] * 21
