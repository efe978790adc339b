"""The endpoints: DRF views, the shared rules (``examples.starlette_api.rules``), JSON answers."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from examples.starlette_api import rules
from examples.starlette_api.payload import MAX_BODY_BYTES, BadRequest, parse_json_object
from examples.starlette_api.storage import TodoItem, TodoStore
from rest_framework.exceptions import MethodNotAllowed, NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from entra_ciam import AuthError
from entra_ciam.bearer import error_response
from entra_ciam.django.integration import http_response
from entra_ciam.django.rest_framework import GuardPermission
from entra_ciam.django.rest_framework import exception_handler as entra_exception_handler

READ = GuardPermission(rules.READ)
WRITE = GuardPermission(rules.WRITE)
_SAFE = ("GET", "HEAD", "OPTIONS")
# Items are one user's private data: no shared cache may keep them.
_PRIVATE = {"Cache-Control": "no-store"}


@functools.cache
def _store_at(path: str) -> TodoStore:
    return TodoStore(path)


def store() -> TodoStore:
    return _store_at(str(settings.TODO_API_DB))


def _error(status: int, error: str, description: str) -> JsonResponse:
    body = {"error": error, "error_description": description}
    return JsonResponse(body, status=status, headers=_PRIVATE)


def _item(item: TodoItem, status: int = 200, **headers: str) -> JsonResponse:
    return JsonResponse(item.to_json(), status=status, headers={**_PRIVATE, **headers})


def _not_found(item_id: int) -> JsonResponse:
    return _error(404, "not_found", f"no todo item {item_id}")


def _json(request: Request) -> dict[str, Any]:
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    raw = request._request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    return parse_json_object(raw)


class _TodoView(APIView):
    def get_permissions(self) -> list[Any]:
        return [READ if self.request.method in _SAFE else WRITE]


class TodoList(_TodoView):
    def get(self, request: Request) -> HttpResponse:
        items = rules.list_items(store(), request.auth, request.query_params.get("owner"))
        return JsonResponse([item.to_json() for item in items], safe=False, headers=_PRIVATE)

    def post(self, request: Request) -> HttpResponse:
        item = rules.create_item(store(), request.auth, _json(request))
        location = request.META.get("SCRIPT_NAME", "") + reverse("todo_item", args=[item.id])
        return _item(item, 201, Location=location)


class TodoItemView(_TodoView):
    def get(self, request: Request, item_id: int) -> HttpResponse:
        item = rules.get_item(store(), request.auth, item_id)
        return _item(item) if item else _not_found(item_id)

    def put(self, request: Request, item_id: int) -> HttpResponse:
        item = rules.update_item(store(), request.auth, item_id, _json(request))
        return _item(item) if item else _not_found(item_id)

    def delete(self, request: Request, item_id: int) -> HttpResponse:
        deleted = rules.delete_item(store(), request.auth, item_id)
        return HttpResponse(status=204) if deleted else _not_found(item_id)


def healthz(request: HttpRequest) -> HttpResponse:
    try:
        ok = store().ping()
    except sqlite3.Error:
        ok = False
    return JsonResponse({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(404, "not_found", "no such resource")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """The Starlette example's answers for what the rules raise; RFC 6750 ones for tokens."""
    if isinstance(exc, BadRequest):
        return _error(exc.status_code, "invalid_request", str(exc))
    if isinstance(exc, AuthError):  # the rules refuse a user token without oid
        status, headers, body = error_response(exc)
        return http_response(status, headers, body)
    if isinstance(exc, sqlite3.Error):
        # Locked past busy_timeout, disk full, file gone: nothing was written; retry.
        response = _error(503, "temporarily_unavailable", "the todo store is busy; retry shortly")
        response["Retry-After"] = "1"
        return response
    if isinstance(exc, NotFound):
        return _error(404, "not_found", str(exc.detail))
    if isinstance(exc, MethodNotAllowed):
        response = _error(405, "method_not_allowed", str(exc.detail))
        return response
    return entra_exception_handler(exc, context)
