"""The todo list API of Microsoft's "sign in users and call an API" sample, in Starlette.

Users (delegated tokens, ``scp``) see and change only their own items, keyed by ``oid``; daemon
apps (app-only tokens, ``roles``) see every item and name the owner of what they add. Another
user's item answers 404, not 403, so ids do not reveal what exists.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from examples.starlette_api.payload import BadRequest, description_of, owner_of, read_json
from examples.starlette_api.storage import TodoItem, TodoStore
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from entra_ciam import (
    AccessTokenValidator,
    Claims,
    EntraConfig,
    InsufficientScopeError,
    InvalidTokenError,
    current_claims,
    require_scope_or_app_permission,
)
from entra_ciam.asgi import BearerTokenMiddleware

__all__ = ["READ", "WRITE", "create_app"]

# Read endpoints: either delegated scope for users, either application permission for apps.
READ = require_scope_or_app_permission(
    scopes=["Todolist.Read", "Todolist.ReadWrite"],
    app_permissions=["Todolist.Read.All", "Todolist.ReadWrite.All"],
)
# Write endpoints: only the ReadWrite grants.
WRITE = require_scope_or_app_permission(
    scopes=["Todolist.ReadWrite"], app_permissions=["Todolist.ReadWrite.All"]
)

# Run by hand from a clone, the examples keep their files in ./state/ (gitignored), apart from
# the demo's .entra-ciam/.
DEFAULT_DB_PATH = "state/todo.sqlite3"


def _store(request: Request) -> TodoStore:
    store: TodoStore = request.app.state.store
    return store


def _caller_owner(claims: Claims) -> str | None:
    """The owner whose items the caller may touch: its ``oid``, or None (every owner) for apps."""
    if claims.is_app_only:
        return None
    if not claims.oid:
        # Without oid a user has no stable key: refuse rather than pool items under "".
        raise InvalidTokenError("The user token carries no oid claim")
    return claims.oid.lower()


def _item_id(request: Request) -> int:
    item_id: int = request.path_params["id"]
    return item_id


# Items are one user's private data: no shared cache may keep them.
_PRIVATE = {"Cache-Control": "no-store"}


def _item_response(item: TodoItem, status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(item.to_json(), status_code=status_code, headers={**_PRIVATE, **headers})


def _not_found(item_id: int) -> JSONResponse:
    return _error(404, "not_found", f"no todo item {item_id}")


def _error(status_code: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers=_PRIVATE,
    )


# -- endpoints --------------------------------------------------------------------------------


@READ
async def list_items(request: Request) -> Response:
    claims = current_claims()
    owner = _caller_owner(claims)
    if owner is None and "owner" in request.query_params:
        # An app may narrow the list to one user: GET /api/todolist?owner=<oid>
        owner = owner_of({"owner": request.query_params["owner"]})
    items = await run_in_threadpool(_store(request).list_items, owner)
    return JSONResponse([item.to_json() for item in items], headers=_PRIVATE)


@READ
async def get_item(request: Request) -> Response:
    item_id = _item_id(request)
    owner = _caller_owner(current_claims())
    item = await run_in_threadpool(_store(request).get, item_id, owner)
    return _item_response(item) if item else _not_found(item_id)


@WRITE
async def create_item(request: Request) -> Response:
    claims = current_claims()
    data = await read_json(request)
    description = description_of(data)
    named = owner_of(data)
    own = _caller_owner(claims)
    if own is None:  # an app
        if named is None:
            raise BadRequest("owner is required: an app must name the user (oid) the item is for")
        owner = named
    elif named is not None and named != own:
        raise BadRequest("owner may be set only by an app; a user adds items to their own list")
    else:
        owner = own
    item = await run_in_threadpool(_store(request).add, owner, description)
    location = request.scope.get("root_path", "") + request.app.url_path_for(
        "todo_item", id=item.id
    )
    return _item_response(item, 201, Location=location)


@WRITE
async def update_item(request: Request) -> Response:
    item_id = _item_id(request)
    owner = _caller_owner(current_claims())
    data = await read_json(request)
    description = description_of(data)
    # The sample's client sends the whole item back: id and owner may come along, unchanged.
    if "id" in data and data["id"] != item_id:
        raise BadRequest("id in the body does not match the id in the path")
    current = await run_in_threadpool(_store(request).get, item_id, owner)
    if current is None:
        return _not_found(item_id)
    named = owner_of(data)
    if named is not None and named != current.owner:
        raise BadRequest("owner of an item cannot be changed")
    item = await run_in_threadpool(_store(request).update, item_id, owner, description)
    return _item_response(item) if item else _not_found(item_id)


@WRITE
async def delete_item(request: Request) -> Response:
    item_id = _item_id(request)
    owner = _caller_owner(current_claims())
    deleted = await run_in_threadpool(_store(request).delete, item_id, owner)
    return Response(status_code=204) if deleted else _not_found(item_id)


async def healthz(request: Request) -> Response:
    try:
        ok = await run_in_threadpool(_store(request).ping)
    except sqlite3.Error:
        ok = False
    return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


# -- errors -----------------------------------------------------------------------------------


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return _error(exc.status_code, "invalid_request", str(exc))


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidTokenError | InsufficientScopeError)
    return Response(exc.body, status_code=exc.status_code, headers=dict(exc.headers))


async def _storage_error(request: Request, exc: Exception) -> Response:
    # Locked past busy_timeout, disk full, file gone: nothing was written; the client may retry.
    response = _error(503, "temporarily_unavailable", "the todo store is busy; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": error, "error_description": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


# -- factory ----------------------------------------------------------------------------------


def create_app(
    config: EntraConfig | None = None,
    db_path: str | os.PathLike[str] = DEFAULT_DB_PATH,
    *,
    validator: AccessTokenValidator | None = None,
) -> Starlette:
    """The API for the tenant in ``config`` (``ENTRA_*`` variables when None).

    Tokens must be issued for ``config.api_client_id``; the v1-style ``api://<id>`` audience is
    accepted as well, as ASP.NET's Microsoft.Identity.Web does for the upstream API.
    """
    if validator is None:
        config = config if config is not None else EntraConfig.from_env()
        validator = AccessTokenValidator.from_config(config, accept_v1_audience=True)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/todolist", list_items, methods=["GET"]),
        Route("/api/todolist", create_item, methods=["POST"]),
        Route("/api/todolist/{id:int}", get_item, methods=["GET"], name="todo_item"),
        Route("/api/todolist/{id:int}", update_item, methods=["PUT"]),
        Route("/api/todolist/{id:int}", delete_item, methods=["DELETE"]),
    ]
    exception_handlers: dict[Any, Any] = {
        BadRequest: _bad_request,
        InvalidTokenError: _auth_error,
        InsufficientScopeError: _auth_error,
        HTTPException: _http_error,
        sqlite3.Error: _storage_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(BearerTokenMiddleware, validator=validator, public_paths=["/healthz"])
        ],
        exception_handlers=exception_handlers,
    )
    app.state.store = TodoStore(db_path)
    return app
