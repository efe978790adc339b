"""``/healthz`` and ``/readyz`` for any ASGI app; the answers are :mod:`entra_ciam.health`'s.

Wrap it around everything else (sign-in, bearer authentication, the app) so that probes are
answered before any authentication: the routes are public by construction.
"""

from __future__ import annotations

from entra_ciam.asgi.exchange import route_path, send_response
from entra_ciam.asgi.types import ASGIApp, Receive, Scope, Send
from entra_ciam.health import HealthAdapter

__all__ = ["HealthMiddleware"]


class HealthMiddleware(HealthAdapter[ASGIApp]):
    """Answer liveness and readiness probes; pass every other request to ``app``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = method = None
        if scope["type"] == "http":
            method = str(scope.get("method", "GET")).upper()
            route = self.checks.route(method, route_path(scope))
        if route is None or method is None:
            await self.app(scope, receive, send)
            return
        answer = self.checks.answer_now(route, method) or await self.checks.check_async(method)
        status, headers, body = answer
        await send_response(send, status, headers, body)
