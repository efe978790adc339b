"""entra_ciam.wsgi.BearerTokenMiddleware behind a real WSGI server on 127.0.0.1.

The validator fetches discovery and keys over HTTP from the loopback OIDC stub; the client talks
HTTP to a werkzeug server, so header merging and status lines are the server's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from werkzeug.serving import make_server

from entra_ciam import MissingTokenError, current_claims
from entra_ciam.context import ENVIRON_KEY, get_claims
from entra_ciam.wsgi import BearerTokenMiddleware
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
        "environ_oid": from_environ.oid if from_environ is not None else None,
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


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module")
def server(tenant: Tenant) -> Iterator[httpx.Client]:
    app = BearerTokenMiddleware(
        inner_app,
        tenant.validator,
        public_paths=["/health"],
        public_prefixes=["/static"],
    )
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_user_token_reaches_the_app_with_claims(server: httpx.Client, tenant: Tenant) -> None:
    response = server.get("/api/todos", headers=auth(tenant.user_token()))
    assert response.status_code == 200
    assert response.json() == {
        "path": "/api/todos",
        "context_oid": USER_OID,
        "environ_oid": USER_OID,
    }


def test_app_only_token_is_accepted_by_the_middleware(server: httpx.Client, tenant: Tenant) -> None:
    response = server.get("/api/todos", headers=auth(tenant.app_token()))
    assert response.status_code == 200
    assert response.json()["environ_oid"] == tenant.factory.app_claims()["oid"]


def test_claims_stay_current_while_the_response_streams(
    server: httpx.Client, tenant: Tenant
) -> None:
    response = server.get("/stream", headers=auth(tenant.user_token()))
    assert response.json() == {"during_iteration": USER_OID}


def test_claims_do_not_leak_into_the_next_request(server: httpx.Client, tenant: Tenant) -> None:
    assert server.get("/api", headers=auth(tenant.user_token())).status_code == 200
    # Same server thread, public path, no token: nothing left over from the request before.
    after = server.get("/health").json()
    assert after == {"path": "/health", "context_oid": None, "environ_oid": None}


@pytest.mark.parametrize("path", ["/health", "/static", "/static/app.js"])
def test_public_paths_pass_without_a_token(server: httpx.Client, path: str) -> None:
    response = server.get(path)
    assert response.status_code == 200
    assert response.json()["context_oid"] is None


@pytest.mark.parametrize("path", ["/healthz", "/health/x", "/statics", "/static/../api"])
def test_near_misses_of_public_paths_need_a_token(server: httpx.Client, path: str) -> None:
    response = server.get(path)
    assert response.status_code == 401


def test_cors_preflight_passes_but_plain_options_does_not(server: httpx.Client) -> None:
    preflight = {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}
    assert server.options("/api/todos", headers=preflight).status_code == 200
    assert server.options("/api/todos").status_code == 401


def test_preflight_pass_through_can_be_disabled(tenant: Tenant) -> None:
    app = BearerTokenMiddleware(inner_app, tenant.validator, allow_preflight=False)
    preflight = {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}
    with LiveServer(app) as live:
        response = httpx.options(f"{live.url}/api", headers=preflight, timeout=10)
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


def test_keys_unavailable_is_503_with_retry_after() -> None:
    with running_tenant() as fresh:
        fresh.stub.fault = "500"
        app = BearerTokenMiddleware(inner_app, fresh.validator)
        with LiveServer(app) as live:
            response = httpx.get(f"{live.url}/api", headers=auth(fresh.user_token()), timeout=20)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "temporarily_unavailable"
