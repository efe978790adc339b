"""Settings errors stop the server at start, even where the framework builds middleware late.

Starlette (and FastAPI) build ``Middleware(SignInMiddleware, ...)`` on the first call they get,
which is the lifespan start-up; an exception there makes uvicorn conclude that the app does not
speak lifespan, and it starts anyway, answering every request with a 500. So where the
integration says the middleware is being built that way, a settings error is kept and reported
the way ASGI provides: ``lifespan.startup.failed`` with the message naming the variable, on
which the server exits. Requests that still arrive (a server run without lifespan) get a
generic 503, and the reason goes to the log. Built directly (``SignInMiddleware(app, config)``),
the middleware raises at once, as before.
"""

from __future__ import annotations

import logging
from typing import Any

from entra_ciam.asgi.exchange import send_response
from entra_ciam.asgi.types import ASGIApp, Receive, Scope, Send
from entra_ciam.errors import ConfigError
from entra_ciam.frameworks import integration_for_app

__all__ = ["StartupChecked", "StartupFailure"]

log = logging.getLogger("entra_ciam.asgi")

_SETTING_ERRORS = (ConfigError, ValueError, TypeError)
_BUILT = "_entra_ciam_built"
_UNAVAILABLE = (
    b'{"error":"temporarily_unavailable","error_description":"The service is not configured"}'
)


class StartupFailure:
    """The ASGI app that stands in for a middleware whose settings are wrong."""

    def __init__(self, app: ASGIApp, error: Exception) -> None:
        self.app = app
        self.error = error
        log.error("entra-ciam cannot start: %s", error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": str(self.error)})
            return
        log.error("entra-ciam is not configured, refusing a request: %s", self.error)
        if scope["type"] == "http":
            headers = [("Content-Type", "application/json"), ("Retry-After", "60")]
            await send_response(send, 503, headers, _UNAVAILABLE)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})


class StartupChecked:
    """For ASGI middlewares: built by a framework at its first call, fail its start-up instead.

    ``__init__`` of the subclass must begin with ``if already_built(self): return``, because
    Python calls it again on the instance ``__new__`` returns.
    """

    def __new__(cls, app: ASGIApp, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        if not integration_for_app(app).builds_middleware_late(app):
            return instance
        try:
            instance.__init__(app, *args, **kwargs)  # type: ignore[misc]
        except _SETTING_ERRORS as exc:
            return StartupFailure(app, exc)
        setattr(instance, _BUILT, True)
        return instance


def already_built(instance: object) -> bool:
    """True on the second ``__init__`` call that follows a successful one in ``__new__``."""
    return bool(instance.__dict__.get(_BUILT))
