"""Apps set up as the docs show, for the start-up checks: settings come from ``ENTRA_*`` only."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from entra_ciam.asgi import SignInMiddleware


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


# Starlette builds this middleware on its first call: the lifespan start-up.
starlette_signin = Starlette(
    routes=[Route("/healthz", healthz)], middleware=[Middleware(SignInMiddleware)]
)


def fastapi_signin() -> Any:
    app = FastAPI()
    app.add_middleware(SignInMiddleware)
    app.add_api_route("/healthz", lambda: "ok")
    return app


def quart_signin() -> Any:
    from quart import Quart

    app = Quart(__name__)
    app.asgi_app = SignInMiddleware(app.asgi_app)  # type: ignore[method-assign]
    return app
