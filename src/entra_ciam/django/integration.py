"""Django's answers: refusals and sign-in redirects as ``HttpResponse`` objects.

Found from the ``HttpRequest`` a view receives (or from a class-based view), and made current by
the middlewares. Django turns any exception a view raises into a 500 unless a middleware handles
it, so the exceptions raised here are answered by ``entra_ciam.django.middleware``.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse

from entra_ciam.claims import Claims
from entra_ciam.errors import AuthError, MissingTokenError
from entra_ciam.frameworks import Integration
from entra_ciam.signin.messages import Response

__all__ = ["INTEGRATION", "NO_MIDDLEWARE", "DjangoIntegration", "http_response"]

T = TypeVar("T")


def http_response(status: int, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    """A Django response with exactly these headers (Set-Cookie kept as written)."""
    answer = HttpResponse(body, status=status)
    del answer.headers["Content-Type"]
    for name, value in headers:
        if name.lower() == "set-cookie":
            add_cookie(answer, value)
        else:
            answer.headers[name] = value
    return answer


def add_cookie(answer: HttpResponse, value: str) -> None:
    """Add a ready ``Set-Cookie`` value; Django keeps one value per header name otherwise."""
    if "Set-Cookie" not in answer.headers:
        answer.headers["Set-Cookie"] = value
    else:
        answer.cookies.load(value)


# The refusal's description when a guard runs where BearerTokenMiddleware never did: still a
# 401 (fail closed), but one that says why a request carrying a good token is refused.
NO_MIDDLEWARE = (
    "No bearer token was validated: entra_ciam.django.middleware.BearerTokenMiddleware "
    "is not in settings.MIDDLEWARE"
)


def _without_bearer_middleware(args: tuple[Any, ...]) -> bool:
    """Whether the view's Django request went through no ``BearerTokenMiddleware``, which
    sets ``request.claims`` on every request (None on public paths). Only a plain Django
    request says so: a DRF request is authenticated by DRF's classes, not the middleware."""
    for arg in args:
        request = arg if isinstance(arg, HttpRequest) else getattr(arg, "request", None)
        if isinstance(request, HttpRequest):  # a function view's request, or a view's own
            return not hasattr(request, "claims")
    return False


class DjangoIntegration(Integration):
    name = "django"

    def claims_of(self, request: Any) -> Claims | None:
        if not isinstance(request, HttpRequest):  # a class-based view: it keeps its request
            request = getattr(request, "request", None)
        found = getattr(request, "claims", None) if isinstance(request, HttpRequest) else None
        return found if isinstance(found, Claims) else None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if isinstance(err, MissingTokenError) and _without_bearer_middleware(args):
            err = MissingTokenError(NO_MIDDLEWARE)
        return http_response(err.status_code, err.headers, err.body)

    def redirect(self, response: Response) -> Any:
        return http_response(response.status, response.headers, response.body)

    def guard_class(self, cls: type[T], wrap: Any) -> type[T]:
        """Guard a class-based view by wrapping its ``dispatch`` (every method goes through it)."""
        dispatch = cls.dispatch  # type: ignore[attr-defined]
        if getattr(cls, "view_is_async", False):
            # Django awaits what an async view's dispatch returns: the refusal must be awaitable.
            @functools.wraps(dispatch)
            async def run(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
                return await dispatch(view, request, *args, **kwargs)

            cls.dispatch = wrap(run)  # type: ignore[attr-defined]
        else:
            cls.dispatch = wrap(dispatch)  # type: ignore[attr-defined]
        return cls


INTEGRATION = DjangoIntegration()
