"""The bearer middlewares, ``entra_ciam.wsgi.BearerTokenMiddleware`` and
``entra_ciam.asgi.BearerTokenMiddleware``: one suite, each test run against both.

Each is served by a real server on 127.0.0.1 (a single-threaded werkzeug server, so leaks
between requests show; uvicorn with lifespan), and the validator fetches discovery and keys over
HTTP from the loopback OIDC stub. What only one interface has (a WSGI body iterated after the app
returned; ASGI lifespan, WebSockets, root_path and raw messages) has its own section below.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from werkzeug.serving import make_server

from entra_ciam import MissingTokenError, current_claims
from entra_ciam.asgi import BearerTokenMiddleware as AsgiBearer
from entra_ciam.asgi.types import Scope
from entra_ciam.context import ENVIRON_KEY, get_claims
from entra_ciam.wsgi import BearerTokenMiddleware as WsgiBearer
from tests.support.asgi import call_asgi, http_scope, response_of
from tests.support.rejections import (
    REQUEST_REJECTIONS,
    TOKEN_REJECTIONS,
    Rejection,
    RequestCase,
    Tenant,
    challenge,
    fill,
    running_tenant,
)
from tests.support.tokens import USER_OID

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

KINDS = ["wsgi", "asgi"]
SPA = "https://spa.example"
PREFLIGHT = {"Origin": SPA, "Access-Control-Request-Method": "GET"}


# -- the apps behind the middleware: each reports what it was given -------------------------------


def inner_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Reports what the middleware exposed, both ways; streams for /stream."""
    try:
        from_context: str | None = current_claims().oid
    except MissingTokenError:
        from_context = None
    from_environ = environ.get(ENVIRON_KEY)
    body = {
        "path": environ["PATH_INFO"],
        "context_oid": from_context,
        "exposed_oid": from_environ.oid if from_environ is not None else None,
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    if environ["PATH_INFO"] == "/stream":
        return stream_claims()
    return [json.dumps(body).encode()]


def stream_claims() -> Iterator[bytes]:
    # Runs while the server iterates the response, after the app callable has returned.
    yield b'{"during_iteration": '
    claims = get_claims()
    yield json.dumps(claims.oid if claims is not None else None).encode()
    yield b"}"


def cors_layer(app: Any) -> Any:
    """A CORS layer inside the bearer middleware, answering preflights under ``/cors/`` as
    Flask-CORS or django-cors-headers do (``Access-Control-Allow-*`` headers, a 200, the view
    not run). No WSGI CORS package is a dependency of the tests; the ASGI side uses Starlette's
    ``CORSMiddleware`` itself."""

    def layer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if (
            environ["REQUEST_METHOD"] == "OPTIONS"
            and environ["PATH_INFO"].startswith("/cors/")
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
            and origin == SPA
        ):
            body = b"OK"
            start_response(
                "200 OK",
                [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Allow-Methods", "GET"),
                    ("Content-Type", "text/plain"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return app(environ, start_response)

    return layer


class LiveServer:
    """A single-threaded werkzeug server: one thread serves every request, so leaks show."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=False)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def report(request: Request) -> JSONResponse:
    state_claims = getattr(request.state, "claims", None)
    context_claims = get_claims()
    return JSONResponse(
        {
            "path": request.url.path,
            "exposed_oid": state_claims.oid if state_claims is not None else None,
            "context_oid": context_claims.oid if context_claims is not None else None,
            "lifespan_value": getattr(request.state, "lifespan_value", None),
        }
    )


async def async_report(request: Request) -> JSONResponse:
    return report(request)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    claims = get_claims()
    await websocket.send_json({"oid": claims.oid if claims is not None else None})
    await websocket.close()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    app.state.lifespan_ran = True
    yield {"lifespan_value": "ready"}


def build_asgi(tenant: Tenant, **options: Any) -> AsgiBearer:
    inner = Starlette(
        routes=[
            Route("/api/todos", async_report, methods=["GET", "OPTIONS"]),
            Route("/sync", report),
            Route("/health", async_report),
            Route("/static", async_report),
            Route("/static/{path:path}", async_report),
            Route("/api", async_report),
            Mount(
                "/cors",
                app=CORSMiddleware(
                    Starlette(routes=[Route("/todos", async_report, methods=["GET", "OPTIONS"])]),
                    allow_origins=[SPA],
                    allow_methods=["GET"],
                ),
            ),
            WebSocketRoute("/ws", ws_echo),
            WebSocketRoute("/public-ws", ws_echo),
        ],
        lifespan=lifespan,
    )
    options.setdefault("public_paths", ["/health", "/public-ws"])
    options.setdefault("public_prefixes", ["/static"])
    return AsgiBearer(inner, tenant.validator, **options)


class UvicornThread:
    """uvicorn serving ``app`` from a thread on a socket bound to a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def build_wsgi(tenant: Tenant, **options: Any) -> WsgiBearer:
    options.setdefault("public_paths", ["/health"])
    options.setdefault("public_prefixes", ["/static"])
    return WsgiBearer(cors_layer(inner_app), tenant.validator, **options)


@contextlib.contextmanager
def served(kind: str, tenant: Tenant, **options: Any) -> Iterator[str]:
    """The middleware of ``kind`` around its reporting app, on a real server; its base URL."""
    if kind == "wsgi":
        with LiveServer(build_wsgi(tenant, **options)) as live:
            yield live.url
    else:
        with UvicornThread(build_asgi(tenant, **options)) as live:
            yield live.url


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module", params=KINDS)
def server(request: pytest.FixtureRequest, tenant: Tenant) -> Iterator[httpx.Client]:
    with served(request.param, tenant) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- both interfaces ------------------------------------------------------------------------------


def test_valid_user_token_reaches_the_app_with_claims(server: httpx.Client, tenant: Tenant) -> None:
    response = server.get("/api/todos", headers=auth(tenant.user_token()))
    assert response.status_code == 200
    body = response.json()
    assert (body["path"], body["context_oid"], body["exposed_oid"]) == (
        "/api/todos",
        USER_OID,
        USER_OID,
    )


def test_app_only_token_is_accepted(server: httpx.Client, tenant: Tenant) -> None:
    response = server.get("/api/todos", headers=auth(tenant.app_token()))
    assert response.status_code == 200
    assert response.json()["exposed_oid"] == tenant.factory.app_claims()["oid"]


def test_claims_do_not_leak_into_the_next_request(server: httpx.Client, tenant: Tenant) -> None:
    assert server.get("/api", headers=auth(tenant.user_token())).status_code == 200
    # Public path, no token: nothing left over from the request before.
    after = server.get("/health").json()
    assert after["context_oid"] is None
    assert after["exposed_oid"] is None


@pytest.mark.parametrize("path", ["/health", "/static", "/static/app.js"])
def test_public_paths_pass_without_a_token(server: httpx.Client, path: str) -> None:
    response = server.get(path)
    assert response.status_code == 200
    assert response.json()["context_oid"] is None


@pytest.mark.parametrize("path", ["/healthz", "/health/x", "/statics", "/static/../api"])
def test_near_misses_of_public_paths_need_a_token(server: httpx.Client, path: str) -> None:
    assert server.get(path).status_code == 401


def test_cors_preflight_passes_but_plain_options_does_not(server: httpx.Client) -> None:
    # Answered by a CORS layer: the answer goes out, its body does not.
    answered = server.options("/cors/todos", headers=PREFLIGHT)
    assert answered.status_code == 200
    assert answered.headers["Access-Control-Allow-Origin"] == SPA
    assert answered.content == b""
    # Answered by the view itself (it routes OPTIONS and would report 200): the 401 challenge.
    viewed = server.options("/api/todos", headers=PREFLIGHT)
    assert viewed.status_code == 401
    assert challenge(viewed.headers["WWW-Authenticate"]) == {"realm": "entra-ciam"}
    assert viewed.json() == {"error": "unauthorized", "error_description": "No bearer token"}
    assert server.options("/api/todos").status_code == 401
    assert server.options("/cors/todos").status_code == 401  # not a preflight: a token needed


def test_a_preflight_to_a_public_path_is_answered_as_the_app_answers(
    server: httpx.Client,
) -> None:
    # Public paths need no CORS answer: the app's (a 200 report, or Starlette's 405) goes out,
    # body and all.
    response = server.options("/health", headers=PREFLIGHT)
    assert response.status_code != 401
    assert response.content


@pytest.mark.parametrize("kind", KINDS)
def test_preflight_pass_through_can_be_disabled(tenant: Tenant, kind: str) -> None:
    with served(kind, tenant, allow_preflight=False) as url:
        response = httpx.options(f"{url}/cors/todos", headers=PREFLIGHT, timeout=10)
    assert response.status_code == 401


def test_lowercase_scheme_is_accepted(server: httpx.Client, tenant: Tenant) -> None:
    response = server.get("/api", headers={"Authorization": f"bearer {tenant.user_token()}"})
    assert response.status_code == 200


@pytest.mark.parametrize("case", REQUEST_REJECTIONS, ids=lambda c: c.id)
def test_request_level_refusals(server: httpx.Client, tenant: Tenant, case: RequestCase) -> None:
    headers, query = fill(case, tenant.user_token())
    response = server.get(f"/api/todos?{query}", headers=headers)
    assert response.status_code == case.status
    params = challenge(response.headers.get("WWW-Authenticate"))
    assert params.get("error") == case.error
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == (case.error or "unauthorized")


@pytest.mark.parametrize("case", TOKEN_REJECTIONS, ids=lambda c: c.id)
def test_every_validator_rejection(server: httpx.Client, tenant: Tenant, case: Rejection) -> None:
    response = server.get("/api/todos", headers=auth(case.make(tenant.factory)))
    assert response.status_code != 500
    assert response.status_code == case.status
    params = challenge(response.headers.get("WWW-Authenticate"))
    assert params["error"] == case.error
    description = response.json()["error_description"]
    assert params["error_description"]
    for word in case.reason:
        assert word in description.lower(), description
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("kind", KINDS)
def test_keys_unavailable_is_503_with_retry_after(kind: str) -> None:
    with running_tenant() as fresh:
        fresh.stub.fault = "500"
        with served(kind, fresh) as url:
            response = httpx.get(f"{url}/api/todos", headers=auth(fresh.user_token()), timeout=20)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "temporarily_unavailable"


# -- WSGI only: a body iterated after the app callable returned -----------------------------------


def test_claims_stay_current_while_the_response_streams(tenant: Tenant) -> None:
    with served("wsgi", tenant) as url:
        response = httpx.get(f"{url}/stream", headers=auth(tenant.user_token()), timeout=10)
    assert response.json() == {"during_iteration": USER_OID}


class LazyBody:
    """A body that starts its response when first iterated (PEP 3333 allows it)."""

    def __init__(self, start_response: StartResponse, cors: bool) -> None:
        self.start_response = start_response
        self.cors = cors
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        headers = [("Content-Type", "application/json")]
        if self.cors:
            headers.append(("Access-Control-Allow-Origin", SPA))
        self.start_response("200 OK", headers)
        yield b'{"secret": 1}'

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("cors", "expected"), [(False, "401 Unauthorized"), (True, "200 OK")], ids=["view", "cors"]
)
def test_a_preflight_answer_started_lazily_is_checked_and_the_body_closed(
    tenant: Tenant, cors: bool, expected: str
) -> None:
    bodies: list[LazyBody] = []
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> LazyBody:
        bodies.append(LazyBody(start_response, cors))
        return bodies[-1]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))

    environ = {
        "REQUEST_METHOD": "OPTIONS",
        "PATH_INFO": "/api/todos",
        "HTTP_ORIGIN": SPA,
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
    }
    content = b"".join(WsgiBearer(app, tenant.validator)(environ, start_response))
    assert [status for status, _ in started] == [expected]
    assert b"secret" not in content
    assert dict(started[0][1])["Content-Length"] == str(len(content))
    assert bodies[0].closed


# -- ASGI only: lifespan ------------------------------------------------------------------------


def test_lifespan_passes_through_the_middleware(tenant: Tenant) -> None:
    with UvicornThread(build_asgi(tenant)) as live:
        response = httpx.get(f"{live.url}/api/todos", headers=auth(tenant.user_token()))
        middleware = live.server.config.app
    assert response.json()["lifespan_value"] == "ready"  # lifespan state next to the claims
    assert isinstance(middleware, AsgiBearer)
    assert isinstance(middleware.app, Starlette)
    assert middleware.app.state.lifespan_ran is True


# -- WebSockets -----------------------------------------------------------------------------------


def test_websocket_with_valid_token_gets_claims(tenant: Tenant) -> None:
    with (
        TestClient(build_asgi(tenant)) as client,
        client.websocket_connect("/ws", headers=auth(tenant.user_token())) as ws,
    ):
        assert ws.receive_json() == {"oid": USER_OID}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not.a.token"}],
    ids=["no-token", "bad-token"],
)
def test_websocket_without_valid_token_is_closed_with_1008(
    tenant: Tenant, headers: dict[str, str]
) -> None:
    with (
        TestClient(build_asgi(tenant)) as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert info.value.code == 1008


def test_websocket_with_expired_token_is_closed_with_reason(tenant: Tenant) -> None:
    expired = TOKEN_REJECTIONS[[r.id for r in TOKEN_REJECTIONS].index("expired")]
    with (
        TestClient(build_asgi(tenant)) as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=auth(expired.make(tenant.factory))),
    ):
        pass
    assert info.value.code == 1008
    assert "expired" in info.value.reason


def test_public_websocket_needs_no_token(tenant: Tenant) -> None:
    with TestClient(build_asgi(tenant)) as client, client.websocket_connect("/public-ws") as ws:
        assert ws.receive_json() == {"oid": None}


# -- raw ASGI -------------------------------------------------------------------------------------


async def test_public_paths_are_matched_without_root_path(tenant: Tenant) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = AsgiBearer(inner, tenant.validator, public_paths=["/health"])
    mounted = await call_asgi(app, http_scope("/api/health", root_path="/api"))
    assert mounted[0]["status"] == 204
    not_mounted = await call_asgi(app, http_scope("/api/health"))
    assert not_mounted[0]["status"] == 401
    assert len(seen) == 1


async def test_raw_refusal_is_a_complete_asgi_response(tenant: Tenant) -> None:
    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        raise AssertionError("must not be called")

    app = AsgiBearer(inner, tenant.validator)
    sent = await call_asgi(app, http_scope("/x", headers=[(b"authorization", b"Bearer a.b.c")]))
    start, body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(len(body["body"])).encode()
    assert challenge(headers[b"www-authenticate"].decode())["error"] == "invalid_token"
    assert body["type"] == "http.response.body"


async def test_claims_scope_is_a_copy_and_context_is_reset(tenant: Tenant) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        assert get_claims() is scope["state"]["claims"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shared_state = {"db": "pool"}
    scope = http_scope("/x", headers=[(b"authorization", f"Bearer {tenant.user_token()}".encode())])
    scope["state"] = shared_state
    sent = await call_asgi(AsgiBearer(inner, tenant.validator), scope)
    assert sent[0]["status"] == 204
    assert seen[0]["state"] == {"db": "pool", "claims": seen[0]["state"]["claims"]}
    assert shared_state == {"db": "pool"}  # the server's dict is not written to
    assert get_claims() is None


async def test_other_scope_types_pass_untouched(tenant: Tenant) -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    app = AsgiBearer(inner, tenant.validator)
    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


@pytest.mark.parametrize("cors", [False, True], ids=["view", "cors-layer"])
async def test_a_preflight_answer_is_replaced_or_sent_without_its_body(
    tenant: Tenant, cors: bool
) -> None:
    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"26")]
        if cors:
            headers.append((b"access-control-allow-origin", SPA.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"secret": ', "more_body": True})
        await send({"type": "http.response.body", "body": b'"for holders"}'})

    scope = http_scope("/api/todos", headers=[(b"access-control-request-method", b"GET")])
    scope["method"] = "OPTIONS"
    sent = await call_asgi(AsgiBearer(inner, tenant.validator), scope)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    status, headers, body = response_of(sent)
    assert b"secret" not in body
    assert dict(headers)["content-length"] == str(len(body))
    if cors:
        assert (status, body) == (200, b"")
        assert dict(headers)["access-control-allow-origin"] == SPA
    else:
        assert status == 401
        assert challenge(dict(headers)["www-authenticate"]) == {"realm": "entra-ciam"}
