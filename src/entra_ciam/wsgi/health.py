"""``/healthz`` and ``/readyz`` for any WSGI app; the answers are :mod:`entra_ciam.health`'s.

Wrap it around everything else (sign-in, bearer authentication, the app) so that probes are
answered before any authentication: the routes are public by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from wsgiref.types import WSGIApplication

from entra_ciam.health import HealthAdapter
from entra_ciam.wsgi.exchange import path_info, respond

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

__all__ = ["HealthMiddleware"]


class HealthMiddleware(HealthAdapter[WSGIApplication]):
    """Answer liveness and readiness probes; pass every other request to ``app``."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        route = self.checks.route(method, path_info(environ))
        if route is None:
            return self.app(environ, start_response)
        answer = self.checks.answer_now(route, method) or self.checks.check(method)
        status, headers, body = answer
        return respond(start_response, status, headers, body)
