"""The same guards on a real FastAPI app: as route decorators and as dependencies.

Driven by FastAPI's TestClient through the ASGI middleware; the validator fetches keys over HTTP
from the loopback stub.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from entra_ciam import (
    MissingTokenError,
    current_claims,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.asgi import BearerTokenMiddleware
from entra_ciam.claims import Claims
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.tokens import USER_OID

READ = require_scope_or_app_permission(
    scopes="Todolist.Read Todolist.ReadWrite",
    app_permissions="Todolist.Read.All Todolist.ReadWrite.All",
)
ReadClaims = Annotated[Claims, Depends(READ)]


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/todos/{item_id}")
    @require_scope("Todolist.Read")
    async def get_todo(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"id": item_id, "q": q, "owner": current_claims().oid}

    @app.put("/todos/{item_id}")
    @require_scope("Todolist.ReadWrite")
    def put_todo(item_id: int, request: Request) -> dict[str, Any]:
        return {"id": item_id, "owner": request.state.claims.oid}

    @app.get("/me")
    def me(claims: ReadClaims) -> dict[str, Any]:
        return {"oid": claims.oid, "app_only": claims.is_app_only}

    @app.delete("/todos", dependencies=[Depends(require_role("Admin"))])
    async def delete_all() -> dict[str, Any]:
        return {"deleted": True}

    @app.get("/public/guarded", dependencies=[Depends(require_scope("Todolist.Read"))])
    async def public_guarded() -> dict[str, Any]:
        return {"ok": True}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, claims: ReadClaims) -> None:
        await websocket.accept()
        await websocket.send_json({"oid": claims.oid})
        await websocket.close()

    return app


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module")
def client(tenant: Tenant) -> Iterator[TestClient]:
    app = create_app()
    app.add_middleware(
        BearerTokenMiddleware, validator=tenant.validator, public_prefixes=["/public"]
    )
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- as decorators --------------------------------------------------------------------------------


def test_decorated_route_keeps_its_parameters(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/todos/5?q=milk", headers=bearer(tenant.user_token()))
    assert response.status_code == 200
    assert response.json() == {"id": 5, "q": "milk", "owner": USER_OID}
    # FastAPI still validates the wrapped signature.
    assert client.get("/todos/five", headers=bearer(tenant.user_token())).status_code == 422


def test_decorated_route_refuses_with_403_naming_scopes(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/todos/5", headers=bearer(tenant.user_token(scp="User.Read")))
    assert response.status_code == 403
    assert challenge(response.headers["www-authenticate"])["scope"] == "Todolist.Read"
    assert response.json()["error"] == "insufficient_scope"


def test_decorated_sync_route(client: TestClient, tenant: Tenant) -> None:
    ok = client.put("/todos/3", headers=bearer(tenant.user_token(scp="Todolist.ReadWrite")))
    assert ok.json() == {"id": 3, "owner": USER_OID}
    refused = client.put("/todos/3", headers=bearer(tenant.user_token(scp="Todolist.Read")))
    assert refused.status_code == 403
    app_token = tenant.app_token(["Todolist.ReadWrite.All", "Todolist.ReadWrite"])
    assert client.put("/todos/3", headers=bearer(app_token)).status_code == 403


def test_openapi_shows_route_parameters_and_no_guard_internals() -> None:
    schema = create_app().openapi()
    get_params = {p["name"] for p in schema["paths"]["/todos/{item_id}"]["get"]["parameters"]}
    assert get_params == {"item_id", "q"}
    assert "parameters" not in schema["paths"]["/me"]["get"]
    assert "parameters" not in schema["paths"]["/todos"]["delete"]


# -- as dependencies ------------------------------------------------------------------------------


def test_dependency_returns_the_claims(client: TestClient, tenant: Tenant) -> None:
    assert client.get("/me", headers=bearer(tenant.user_token())).json() == {
        "oid": USER_OID,
        "app_only": False,
    }
    app_token = tenant.app_token(["Todolist.Read.All"])
    assert client.get("/me", headers=bearer(app_token)).json()["app_only"] is True


def test_dependency_refusal_is_403_with_challenge(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/me", headers=bearer(tenant.user_token(scp="User.Read")))
    assert response.status_code == 403
    params = challenge(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "Todolist.Read Todolist.ReadWrite"
    assert response.headers["cache-control"] == "no-store"
    # The decorators' body, not FastAPI's {"detail": ...}.
    decorated = client.get("/todos/5", headers=bearer(tenant.user_token(scp="User.Read")))
    assert response.json()["error"] == "insufficient_scope"
    assert set(response.json()) == set(decorated.json()) == {"error", "error_description", "scope"}
    assert response.json()["scope"] == "Todolist.Read Todolist.ReadWrite"
    assert response.headers["content-type"] == decorated.headers["content-type"]


def test_user_token_with_app_role_never_passes_app_permission(
    client: TestClient, tenant: Tenant
) -> None:
    token = tenant.user_token(scp="openid", roles=["Todolist.Read.All"])
    assert client.get("/me", headers=bearer(token)).status_code == 403


def test_dependencies_list(client: TestClient, tenant: Tenant) -> None:
    assert client.delete("/todos", headers=bearer(tenant.user_token())).status_code == 403
    admin = tenant.app_token(["Admin"])
    assert client.delete("/todos", headers=bearer(admin)).json() == {"deleted": True}


def test_dependency_without_token_is_401_not_500(client: TestClient) -> None:
    response = client.get("/public/guarded")
    assert response.status_code == 401
    assert challenge(response.headers["www-authenticate"]) == {"realm": "entra-ciam"}


def test_websocket_dependency(client: TestClient, tenant: Tenant) -> None:
    with client.websocket_connect("/ws", headers=bearer(tenant.user_token())) as ws:
        assert ws.receive_json() == {"oid": USER_OID}
    headers = bearer(tenant.user_token(scp="User.Read"))
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert info.value.code == 1008


def test_without_middleware_dependencies_answer_401_and_decorators_fail_closed(
    tenant: Tenant,
) -> None:
    with TestClient(create_app()) as plain:
        token = bearer(tenant.user_token())
        assert plain.get("/me", headers=token).status_code == 401
        assert plain.put("/todos/1", headers=token).status_code == 401  # it takes the Request
        # No request argument and no middleware: nothing can answer, the guard raises.
        with pytest.raises(MissingTokenError):
            plain.get("/todos/1", headers=token)
