"""The decorators on a real Flask app behind the WSGI middleware, driven by Flask's test client.

Tokens are checked by the real validator, which fetches keys over HTTP from the loopback stub.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from entra_ciam import (
    MissingTokenError,
    current_claims,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.wsgi import BearerTokenMiddleware
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.tokens import USER_OID

READ = require_scope_or_app_permission(
    scopes="Todolist.Read Todolist.ReadWrite",
    app_permissions=["Todolist.Read.All", "Todolist.ReadWrite.All"],
)
WRITE = require_scope_or_app_permission(
    scopes="Todolist.ReadWrite", app_permissions="Todolist.ReadWrite.All"
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/todos")
    @READ
    def list_todos() -> dict[str, Any]:
        return {"owner": current_claims().oid}

    @app.post("/todos")
    @WRITE
    def create_todo() -> tuple[dict[str, Any], int]:
        return {"owner": current_claims().oid}, 201

    @app.get("/todos/<int:item_id>")
    @require_scope("Todolist.Read")
    def get_todo(item_id: int) -> dict[str, Any]:
        return {"id": item_id}

    @app.get("/async")
    @require_scope("Todolist.Read")
    async def async_view() -> dict[str, Any]:
        return {"owner": current_claims().oid}

    @app.get("/admin")
    @require_role("Admin")
    def admin() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/apps-only")
    @require_scope_or_app_permission(app_permissions="Todolist.Read.All")
    def apps_only() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/public/guarded")
    @require_scope("Todolist.Read")
    def public_but_guarded() -> dict[str, Any]:
        return {"ok": True}

    return app


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module")
def client(tenant: Tenant) -> FlaskClient:
    app = create_app()
    app.wsgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, tenant.validator, public_prefixes=["/public"]
    )
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_user_with_a_read_scope_reads(client: FlaskClient, tenant: Tenant) -> None:
    response = client.get("/todos", headers=bearer(tenant.user_token(scp="Todolist.Read")))
    assert response.status_code == 200
    assert response.json == {"owner": USER_OID}


def test_user_without_scope_gets_403_naming_the_accepted_scopes(
    client: FlaskClient, tenant: Tenant
) -> None:
    response = client.get("/todos", headers=bearer(tenant.user_token(scp="User.Read")))
    assert response.status_code == 403
    params = challenge(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "Todolist.Read Todolist.ReadWrite"
    assert response.json is not None
    assert response.json["error"] == "insufficient_scope"
    assert response.json["scope"] == "Todolist.Read Todolist.ReadWrite"


def test_read_only_user_cannot_write(client: FlaskClient, tenant: Tenant) -> None:
    token = tenant.user_token(scp="Todolist.Read")
    response = client.post("/todos", headers=bearer(token))
    assert response.status_code == 403
    assert challenge(response.headers["WWW-Authenticate"])["scope"] == "Todolist.ReadWrite"
    token = tenant.user_token(scp="Todolist.ReadWrite")
    assert client.post("/todos", headers=bearer(token)).status_code == 201


def test_app_with_permission_reads_but_not_writes(client: FlaskClient, tenant: Tenant) -> None:
    token = tenant.app_token(["Todolist.Read.All"])
    assert client.get("/todos", headers=bearer(token)).status_code == 200
    response = client.post("/todos", headers=bearer(token))
    assert response.status_code == 403
    assert challenge(response.headers["WWW-Authenticate"])["scope"] == "Todolist.ReadWrite.All"


def test_app_only_token_never_passes_a_scope_check(client: FlaskClient, tenant: Tenant) -> None:
    token = tenant.app_token(["Todolist.Read", "Todolist.Read.All"])
    assert client.get("/todos/1", headers=bearer(token)).status_code == 403


def test_user_token_never_passes_an_app_permission_check(
    client: FlaskClient, tenant: Tenant
) -> None:
    token = tenant.user_token(scp="Todolist.Read", roles=["Todolist.Read.All"])
    assert client.get("/apps-only", headers=bearer(token)).status_code == 403
    assert client.get("/apps-only", headers=bearer(tenant.app_token())).status_code == 200


def test_route_parameters_reach_the_view(client: FlaskClient, tenant: Tenant) -> None:
    response = client.get("/todos/42", headers=bearer(tenant.user_token()))
    assert response.json == {"id": 42}


def test_async_view(client: FlaskClient, tenant: Tenant) -> None:
    response = client.get("/async", headers=bearer(tenant.user_token()))
    assert response.status_code == 200
    assert response.json == {"owner": USER_OID}
    assert client.get("/async", headers=bearer(tenant.user_token(scp="Other"))).status_code == 403


def test_role(client: FlaskClient, tenant: Tenant) -> None:
    assert (
        client.get("/admin", headers=bearer(tenant.user_token(roles=["Admin"]))).status_code == 200
    )
    response = client.get("/admin", headers=bearer(tenant.user_token()))
    assert response.status_code == 403
    assert challenge(response.headers["WWW-Authenticate"])["scope"] == "Admin"


def test_decorator_answers_401_when_the_middleware_let_the_request_through(
    client: FlaskClient,
) -> None:
    response = client.get("/public/guarded")
    assert response.status_code == 401
    assert challenge(response.headers["WWW-Authenticate"]) == {"realm": "entra-ciam"}


def test_without_any_middleware_the_decorator_fails_closed(tenant: Tenant) -> None:
    """No middleware validated the token and none is there to answer: the view never runs and
    the guard raises the 401 error (a middleware or the app's error handler answers it)."""
    app = create_app()
    app.testing = True  # let the exception reach the test instead of Flask's 500 page
    with pytest.raises(MissingTokenError):
        app.test_client().get("/todos", headers=bearer(tenant.user_token()))


def test_an_auth_error_raised_through_the_app_is_answered_by_the_middleware(
    tenant: Tenant,
) -> None:
    """``guard.check()`` called in a view raises; the WSGI middleware answers it (RFC 6750)."""

    def raw_app(environ: Any, start_response: Any) -> list[bytes]:
        READ.check()
        start_response("200 OK", [])
        return [b"ok"]

    from werkzeug.test import Client

    client = Client(BearerTokenMiddleware(raw_app, tenant.validator))
    refused = client.get("/", headers=bearer(tenant.user_token(scp="User.Read")))
    assert refused.status_code == 403
    assert challenge(refused.headers["WWW-Authenticate"])["error"] == "insufficient_scope"
    assert refused.json == {
        "error": "insufficient_scope",
        "error_description": refused.json["error_description"],
        "scope": "Todolist.Read Todolist.ReadWrite",
    }
    assert client.get("/", headers=bearer(tenant.user_token())).status_code == 200


def test_decorated_views_keep_their_identity() -> None:
    app = create_app()
    view = app.view_functions["get_todo"]
    assert view.__name__ == "get_todo"
    assert list(inspect.signature(view).parameters) == ["item_id"]
    assert inspect.iscoroutinefunction(app.view_functions["async_view"])
    assert inspect.unwrap(view) is not view
    assert not inspect.iscoroutinefunction(inspect.unwrap(view))
