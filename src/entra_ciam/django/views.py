"""The view behind the sign-in routes: the step the path names, run by ``SignIn``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from entra_ciam.django.integration import http_response
from entra_ciam.signin.context import RequestContext
from entra_ciam.signin.pages import error_page

__all__ = ["sign_in_route"]


def _sign_in_route(request: HttpRequest) -> HttpResponse:
    ctx = getattr(request, "entra_signin", None)
    if not isinstance(ctx, RequestContext):
        raise ImproperlyConfigured(
            "entra_ciam.django.urls needs entra_ciam.django.middleware.SignInMiddleware "
            "in settings.MIDDLEWARE"
        )
    if not ctx.signin.is_route(ctx.request.path):
        page = error_page(
            404,
            f"The sign-in routes answer under {ctx.signin.prefix}/: include "
            "entra_ciam.django.urls there, or set ENTRA_CIAM['SIGNIN_PREFIX'].",
        )
        return http_response(page.status, page.headers, page.body)
    answer = ctx.signin.handle(ctx)
    return http_response(answer.status, answer.headers, answer.body)


# Entra posts its answer from its own origin and the sign-out page checks its origin itself:
# Django's CSRF token has no place here; the flow's state is the check.
sign_in_route = csrf_exempt(_sign_in_route)
