"""A CORS layer below the bearer middleware, as django-cors-headers is when listed after it.

django-cors-headers is not a dependency of the tests; this answers preflights the way it does
(``Access-Control-Allow-*`` headers and an empty 200, without running the view) for the paths
under ``/cors/``, so the bearer middleware's rule for preflights meets a real CORS answer.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

ALLOWED_ORIGIN = "https://spa.example"


class CorsPreflightMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "OPTIONS"
            and request.path_info.startswith("/cors/")
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META
            and request.META.get("HTTP_ORIGIN") == ALLOWED_ORIGIN
        ):
            answer = HttpResponse("preflight body, never sent")
            answer["Access-Control-Allow-Origin"] = ALLOWED_ORIGIN
            answer["Access-Control-Allow-Methods"] = "GET, POST"
            answer["Access-Control-Allow-Headers"] = "authorization"
            return answer
        return self.get_response(request)
