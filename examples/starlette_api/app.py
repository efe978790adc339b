"""The todo list API of Microsoft's "sign in users and call an API" sample, in Starlette.

Users (delegated tokens, ``scp``) see and change only their own items, keyed by ``oid``; daemon
apps (app-only tokens, ``roles``) see every item and name the owner of what they add. Another
user's item answers 404, not 403, so ids do not reveal what exists.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from examples.starlette_api import rules
from examples.starlette_api.payload import BadRequest, read_json
from examples.starlette_api.rules import READ, WRITE
from examples.starlette_api.storage import DEFAULT_DB_PATH, TodoItem, TodoStore
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from entra_ciam import (
    AccessTokenValidator,
    EntraConfig,
    InsufficientScopeError,
    InvalidTokenError,
    current_claims,
)
from entra_ciam.asgi import BearerTokenMiddleware

__all__ = ["READ", "WRITE", "create_app"]


def _store(request: Request) -> TodoStore:
    store: TodoStore = request.app.state.store
    return store


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
    owner = request.query_params.get("owner")
    items = await run_in_threadpool(rules.list_items, _store(request), current_claims(), owner)
    return JSONResponse([item.to_json() for item in items], headers=_PRIVATE)


@READ
async def get_item(request: Request) -> Response:
    item_id = _item_id(request)
    item = await run_in_threadpool(rules.get_item, _store(request), current_claims(), item_id)
    return _item_response(item) if item else _not_found(item_id)


@WRITE
async def create_item(request: Request) -> Response:
    data = await read_json(request)
    item = await run_in_threadpool(rules.create_item, _store(request), current_claims(), data)
    location = request.scope.get("root_path", "") + request.app.url_path_for(
        "todo_item", id=item.id
    )
    return _item_response(item, 201, Location=location)


@WRITE
async def update_item(request: Request) -> Response:
    item_id = _item_id(request)
    data = await read_json(request)
    claims = current_claims()
    item = await run_in_threadpool(rules.update_item, _store(request), claims, item_id, data)
    return _item_response(item) if item else _not_found(item_id)


@WRITE
async def delete_item(request: Request) -> Response:
    item_id = _item_id(request)
    claims = current_claims()
    deleted = await run_in_threadpool(rules.delete_item, _store(request), claims, item_id)
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
