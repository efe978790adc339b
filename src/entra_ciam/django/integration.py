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
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import Integration
from entra_ciam.signin.messages import Response

__all__ = ["INTEGRATION", "DjangoIntegration", "http_response"]

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


class DjangoIntegration(Integration):
    name = "django"

    def claims_of(self, request: Any) -> Claims | None:
        if not isinstance(request, HttpRequest):  # a class-based view: it keeps its request
            request = getattr(request, "request", None)
        found = getattr(request, "claims", None) if isinstance(request, HttpRequest) else None
        return found if isinstance(found, Claims) else None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
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
