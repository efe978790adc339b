"""A Quart app for the tests, configured from the ``ENTRA_*`` variables (served by hypercorn)."""

from __future__ import annotations

from typing import Any

from quart import Quart, websocket

from entra_ciam import (
    AccessTokenValidator,
    EntraConfig,
    current_claims,
    require_role,
    require_scope,
)
from entra_ciam.asgi import BearerTokenMiddleware


def create_app(validator: Any) -> Quart:
    app = Quart(__name__)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/scoped")
    @require_scope("Todolist.Read")
    async def scoped() -> dict[str, Any]:
        return {"oid": current_claims().oid}

    @app.get("/sync-scoped")
    @require_scope("Todolist.Read")
    def sync_scoped() -> dict[str, Any]:
        return {"oid": current_claims().oid}

    @app.get("/role")
    @require_role("Todolist.Read.All")
    async def role() -> dict[str, Any]:
        return {"oid": current_claims().oid, "app": current_claims().is_app_only}

    @app.websocket("/ws")
    @require_scope("Todolist.Read")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send_json({"oid": current_claims().oid})

    app.asgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
        app.asgi_app, validator=validator, public_paths=["/healthz"]
    )
    return app


def from_env() -> Quart:
    return create_app(AccessTokenValidator.from_config(EntraConfig.from_env()))
