"""FastAPI's OpenAPI side: the security scheme, the scopes per route, /docs kept reachable.

The refusals go through the real middleware and validator (keys from the loopback stub); the
scheme's endpoints come from the stub's discovery document, never written by hand.
"""

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entra_ciam import Claims, EntraConfig
from entra_ciam.asgi import BearerTokenMiddleware
from entra_ciam.fastapi import EntraSecurity, docs_paths
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.tokens import API_CLIENT_ID, USER_OID

PREFIX = f"api://{API_CLIENT_ID}/"


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


def create_app(tenant: Tenant) -> FastAPI:
    config = EntraConfig(authority=tenant.stub.authority, api_client_id=API_CLIENT_ID)
    entra = EntraSecurity.from_config(
        config, scopes={"Todolist.Read": "Read your list", "Todolist.ReadWrite": "Change it"}
    )
    app = FastAPI()
    Reader = Annotated[Claims, entra.require_scope("Todolist.Read", "Todolist.ReadWrite")]
    Writer = Annotated[
        Claims,
        entra.require_scope_or_app_permission(
            scopes="Todolist.ReadWrite", app_permissions="Todolist.ReadWrite.All"
        ),
    ]

    @app.get("/api/todolist")
    async def list_items(claims: Reader) -> dict[str, Any]:
        return {"owner": claims.oid}

    @app.post("/api/todolist", status_code=201)
    def create_item(claims: Writer) -> dict[str, Any]:
        return {"owner": claims.oid}

    @app.get("/admin", dependencies=[entra.require_role("Admin")])
    async def admin() -> dict[str, Any]:
        return {"ok": True}

    app.add_middleware(
        BearerTokenMiddleware, validator=tenant.validator, public_paths=docs_paths(app)
    )
    return app


@pytest.fixture(scope="module")
def client(tenant: Tenant) -> Iterator[TestClient]:
    with TestClient(create_app(tenant)) as client:
        yield client


def test_openapi_declares_the_oauth2_scheme_from_discovery(
    client: TestClient, tenant: Tenant
) -> None:
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["entra"]
    metadata = httpx.get(EntraConfig(authority=tenant.stub.authority).metadata_url).json()
    flow = scheme["flows"]["authorizationCode"]
    assert scheme["type"] == "oauth2"
    assert flow["authorizationUrl"] == metadata["authorization_endpoint"]
    assert flow["tokenUrl"] == metadata["token_endpoint"]
    assert flow["scopes"] == {
        PREFIX + "Todolist.Read": "Read your list",
        PREFIX + "Todolist.ReadWrite": "Change it",
    }


def test_each_route_lists_the_scopes_it_needs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/api/todolist"]["get"]["security"] == [
        {"entra": [PREFIX + "Todolist.Read", PREFIX + "Todolist.ReadWrite"]}
    ]
    assert paths["/api/todolist"]["post"]["security"] == [
        {"entra": [PREFIX + "Todolist.ReadWrite"]}
    ]
    assert paths["/admin"]["get"]["security"] == [{"entra": []}]  # a role is not an OAuth scope
    assert "parameters" not in paths["/api/todolist"]["get"]  # nothing leaks into the schema


def test_docs_and_schema_stay_reachable_without_a_token(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/api/todolist").status_code == 401


def test_refusals_have_the_decorators_body_and_headers(client: TestClient, tenant: Tenant) -> None:
    token = tenant.user_token(scp="User.Read")
    refused = client.get("/api/todolist", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "insufficient_scope",
        "error_description": refused.json()["error_description"],
        "scope": "Todolist.Read Todolist.ReadWrite",
    }
    assert challenge(refused.headers["www-authenticate"])["error"] == "insufficient_scope"
    assert refused.headers["cache-control"] == "no-store"


def test_allowed_callers_get_their_claims(client: TestClient, tenant: Tenant) -> None:
    user = {"Authorization": f"Bearer {tenant.user_token()}"}
    assert client.get("/api/todolist", headers=user).json() == {"owner": USER_OID}
    app = {"Authorization": f"Bearer {tenant.app_token(['Todolist.ReadWrite.All'])}"}
    assert client.post("/api/todolist", headers=app).status_code == 201
    admin = {"Authorization": f"Bearer {tenant.app_token(['Admin'])}"}
    assert client.get("/admin", headers=admin).json() == {"ok": True}


def test_without_the_discovery_document_the_scheme_takes_a_pasted_token() -> None:
    config = EntraConfig(
        authority="http://127.0.0.1:9/00000000-0000-4000-8000-000000000000",
        api_client_id=API_CLIENT_ID,
    )
    scheme = EntraSecurity.from_config(config)
    assert scheme.model.model_dump(exclude_none=True, by_alias=True, mode="json") == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
