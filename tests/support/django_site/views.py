"""Views guarded the ways the docs show, sync and async, functions and classes, Django and DRF."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from entra_ciam import (
    current_claims,
    current_user,
    login_required,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.django.rest_framework import HasRole, HasScope, HasScopeOrAppPermission


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_scope("Todolist.Read")
def scoped(request: HttpRequest) -> HttpResponse:
    claims = request.claims  # type: ignore[attr-defined]
    return JsonResponse({"oid": claims.oid, "current": current_claims().oid})


@require_role("Todolist.Read.All")
async def role(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"oid": current_claims().oid, "app": current_claims().is_app_only})


@require_scope_or_app_permission(
    scopes="Todolist.ReadWrite", app_permissions="Todolist.ReadWrite.All"
)
class Items(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"view": "class", "oid": current_claims().oid})


@require_scope("Todolist.Read")
class AsyncItems(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"view": "async class", "oid": current_claims().oid})


class MethodGuarded(View):
    @method_decorator(require_scope("Todolist.Read"))
    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"view": "method"})


def checks_inside(request: HttpRequest) -> HttpResponse:
    """``guard.check()`` in the view: the refusal reaches the middleware's process_exception."""
    require_scope("Todolist.Read").check()
    return JsonResponse({"ok": True})


@require_scope("Todolist.ReadWrite")
def write(request: HttpRequest) -> HttpResponse:
    """Any method, POST included: Django's CSRF check applies unless the token exempts it."""
    return JsonResponse({"method": request.method, "oid": current_claims().oid})


def unguarded(request: HttpRequest) -> HttpResponse:
    """Protected by the bearer middleware alone, answering every method (OPTIONS included)."""
    return JsonResponse({"secret": "for token holders only"})


def claims_reader(request: HttpRequest) -> HttpResponse:
    """Relies on the middleware alone and reads ``request.claims`` (None would be a 500)."""
    return JsonResponse({"oid": request.claims.oid})  # type: ignore[attr-defined]


class DrfScoped(APIView):
    permission_classes = (HasScope("Todolist.Read"),)

    def get(self, request: Request) -> Response:
        return Response({"oid": request.auth.oid, "user": str(request.user)})


class DrfRole(APIView):
    permission_classes = (HasRole("Todolist.Read.All"),)

    def get(self, request: Request) -> Response:
        return Response({"oid": request.auth.oid, "app": request.user.is_app})


class DrfEither(APIView):
    permission_classes = (
        HasScopeOrAppPermission(scopes="Todolist.Read", app_permissions="Todolist.Read.All"),
    )

    def get(self, request: Request) -> Response:
        return Response({"oid": request.auth.oid})


class DrfDecorated(APIView):
    permission_classes: tuple[Any, ...] = ()

    @require_scope("Todolist.Read")
    def get(self, request: Request) -> Response:
        return Response({"oid": request.auth.oid})


class DrfCurrent(APIView):
    """``current_claims()`` in a view authenticated by DRF's class alone (no middleware)."""

    permission_classes = (HasScope("Todolist.Read"),)

    def get(self, request: Request) -> Response:
        return Response({"oid": current_claims().oid, "auth": request.auth.oid})


class DrfOpen(APIView):
    """Admits anonymous callers, yet reads ``current_claims()``: a refusal the view lets out."""

    permission_classes: tuple[Any, ...] = ()

    def get(self, request: Request) -> Response:
        return Response({"oid": current_claims().oid})


@login_required
def web_home(request: HttpRequest) -> HttpResponse:
    user = current_user()
    assert user is not None
    return HttpResponse(f"Hello {user['name']}", content_type="text/plain")


@login_required
async def web_async(request: HttpRequest) -> HttpResponse:
    user = current_user()
    assert user is not None
    return HttpResponse(f"Async hello {user['name']}", content_type="text/plain")
