"""The decorators on a real Starlette app behind the ASGI middleware, driven by its TestClient.

Covers function endpoints (sync, run in a thread, and async), HTTPEndpoint methods and a
WebSocket endpoint. The validator fetches keys over HTTP from the loopback stub.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from entra_ciam import (
    current_claims,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.asgi import BearerTokenMiddleware
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.tokens import USER_OID

READ = require_scope_or_app_permission(
    scopes=["Todolist.Read", "Todolist.ReadWrite"],
    app_permissions=["Todolist.Read.All", "Todolist.ReadWrite.All"],
)


@READ
def sync_read(request: Request) -> JSONResponse:
    return JSONResponse({"owner": current_claims().oid, "state": request.state.claims.oid})


@require_scope("Todolist.ReadWrite")
async def async_write(request: Request) -> JSONResponse:
    return JSONResponse({"owner": current_claims().oid}, status_code=201)


class Items(HTTPEndpoint):
    @require_scope("Todolist.Read")
    async def get(self, request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"]})

    @require_role("Admin")
    def delete(self, request: Request) -> Response:
        return Response(status_code=204)


@require_scope("Todolist.Read")
async def ws_read(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"owner": current_claims().oid})
    await websocket.close()


@require_scope("Todolist.Read")
async def guarded_public(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/todos", sync_read),
    Route("/todos", async_write, methods=["POST"]),
    Route("/items/{item_id:int}", Items),
    Route("/public/guarded", guarded_public),
    WebSocketRoute("/public/ws", ws_read),
    WebSocketRoute("/ws", ws_read),
]


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module")
def client(tenant: Tenant) -> Iterator[TestClient]:
    middleware = [
        Middleware(BearerTokenMiddleware, validator=tenant.validator, public_prefixes=["/public"])
    ]
    with TestClient(Starlette(routes=ROUTES, middleware=middleware)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sync_endpoint_sees_claims_in_context_and_state(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/todos", headers=bearer(tenant.user_token()))
    assert response.status_code == 200
    assert response.json() == {"owner": USER_OID, "state": USER_OID}


def test_sync_endpoint_refuses_missing_scope_with_403(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/todos", headers=bearer(tenant.user_token(scp="User.Read")))
    assert response.status_code == 403
    params = challenge(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "Todolist.Read Todolist.ReadWrite"
    assert response.json()["scope"] == "Todolist.Read Todolist.ReadWrite"


def test_app_permission_and_app_only_rules(client: TestClient, tenant: Tenant) -> None:
    app_token = tenant.app_token(["Todolist.Read.All", "Todolist.ReadWrite"])
    assert client.get("/todos", headers=bearer(app_token)).status_code == 200
    # The app holds a role named like the write scope: still refused, scopes are for users.
    assert client.post("/todos", headers=bearer(app_token)).status_code == 403
    user_token = tenant.user_token(scp="openid", roles=["Todolist.Read.All"])
    assert client.get("/todos", headers=bearer(user_token)).status_code == 403


def test_async_endpoint(client: TestClient, tenant: Tenant) -> None:
    ok = client.post("/todos", headers=bearer(tenant.user_token(scp="Todolist.ReadWrite")))
    assert ok.status_code == 201
    assert ok.json() == {"owner": USER_OID}
    refused = client.post("/todos", headers=bearer(tenant.user_token(scp="Todolist.Read")))
    assert refused.status_code == 403
    assert challenge(refused.headers["www-authenticate"])["scope"] == "Todolist.ReadWrite"


def test_http_endpoint_methods(client: TestClient, tenant: Tenant) -> None:
    token = tenant.user_token()
    assert client.get("/items/7", headers=bearer(token)).json() == {"id": 7}
    assert client.delete("/items/7", headers=bearer(token)).status_code == 403
    admin = tenant.user_token(roles=["Admin"])
    assert client.delete("/items/7", headers=bearer(admin)).status_code == 204


def test_decorator_answers_401_without_token(client: TestClient) -> None:
    response = client.get("/public/guarded")
    assert response.status_code == 401
    assert challenge(response.headers["www-authenticate"]) == {"realm": "entra-ciam"}


def test_websocket_endpoint_without_token_is_closed_with_1008(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/public/ws"):
        pass
    assert info.value.code == 1008


def test_websocket_endpoint_checks_the_scope(client: TestClient, tenant: Tenant) -> None:
    with client.websocket_connect("/ws", headers=bearer(tenant.user_token())) as ws:
        assert ws.receive_json() == {"owner": USER_OID}
    # A valid token passes the middleware; the decorator then refuses the missing scope.
    headers = bearer(tenant.user_token(scp="User.Read"))
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert info.value.code == 1008
    assert "Todolist.Read" in info.value.reason


def test_without_any_middleware_the_decorator_fails_closed(tenant: Tenant) -> None:
    with TestClient(Starlette(routes=ROUTES)) as plain:
        response = plain.get("/todos", headers=bearer(tenant.user_token()))
    assert response.status_code == 401
