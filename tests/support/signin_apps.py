"""The same small web app in Flask and in Starlette, for the sign-in end-to-end and attack tests.

Routes: ``/`` public; ``/me`` the user's claims; ``/todos`` calls the todo API with a user token;
``/write`` needs a scope not asked for at sign-in (incremental consent); ``/token-claims`` shows
what the validator says of the user's token; ``/swallowed`` catches the acquirer's exception and
answers 200 itself, which must not stop the redirect. Flask runs with its production exception
handling (a generic error handler, exceptions not propagated).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entra_ciam import AccessTokenValidator, TokenAcquirer, current_user, login_required
from entra_ciam.devidp import defaults
from tests.support.webapps import READ, READWRITE, Stack, signin_stack


def _validator(stack: Stack) -> AccessTokenValidator:
    return AccessTokenValidator(
        authority=stack.idp.authority,
        audience=defaults.TODO_API_CLIENT_ID,
        verify=stack.idp.ca_bundle,
    )


def _claims_view(validator: AccessTokenValidator, token: str) -> dict[str, Any]:
    claims = validator.validate(token)
    return {"oid": claims.oid, "scp": sorted(claims.scopes), "aud": claims["aud"]}


def flask_app(stack: Stack, **options: Any) -> Any:
    from flask import Flask, jsonify

    from entra_ciam.wsgi import SignInMiddleware

    app = Flask("signin-test")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    acquirer = TokenAcquirer()
    validator = _validator(stack)

    @app.errorhandler(Exception)
    def oops(exc: Exception) -> Any:
        return jsonify(error="the app's own 500 page"), 500

    @app.get("/")
    def home() -> Any:
        user = current_user()
        return jsonify(user=user["name"] if user else None)

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(dict(current_user() or {}))

    @app.get("/todos")
    @login_required
    def todos() -> Any:
        token = acquirer.acquire_token_for_user([READ])
        answer = httpx.get(stack.api, headers={"Authorization": f"Bearer {token}"})
        return jsonify(status=answer.status_code, items=answer.json())

    @app.get("/write")
    def write() -> Any:
        token = acquirer.acquire_token_for_user(READWRITE)
        answer = httpx.post(
            stack.api,
            json={"description": "Buy milk"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return jsonify(status=answer.status_code, item=answer.json())

    @app.get("/token-claims")
    def token_claims() -> Any:
        return jsonify(_claims_view(validator, acquirer.acquire_token_for_user([READ])))

    @app.get("/swallowed")
    def swallowed() -> Any:
        try:
            acquirer.acquire_token_for_user(READWRITE)
        except Exception:
            return "the view swallowed it", 200
        return "got a token", 200

    config = options.pop("config", None) or stack.config()
    app.wsgi_app = SignInMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, config, scopes=[READ], **options
    )
    return app


def starlette_app(stack: Stack, **options: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from entra_ciam.asgi import SignInMiddleware

    acquirer = TokenAcquirer()
    validator = _validator(stack)

    async def home(request: Request) -> JSONResponse:
        user = current_user()
        return JSONResponse({"user": user["name"] if user else None})

    @login_required
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(dict(current_user() or {}))

    @login_required
    async def todos(request: Request) -> JSONResponse:
        token = await acquirer.acquire_token_for_user_async([READ])
        async with httpx.AsyncClient() as client:
            answer = await client.get(stack.api, headers={"Authorization": f"Bearer {token}"})
        return JSONResponse({"status": answer.status_code, "items": answer.json()})

    def write(request: Request) -> JSONResponse:  # a sync endpoint: run in Starlette's threads
        token = acquirer.acquire_token_for_user(READWRITE)
        answer = httpx.post(
            stack.api,
            json={"description": "Buy milk"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return JSONResponse({"status": answer.status_code, "item": answer.json()})

    async def token_claims(request: Request) -> JSONResponse:
        token = await acquirer.acquire_token_for_user_async([READ])
        return JSONResponse(_claims_view(validator, token))

    async def swallowed(request: Request) -> PlainTextResponse:
        try:
            await acquirer.acquire_token_for_user_async(READWRITE)
        except Exception:
            return PlainTextResponse("the view swallowed it")
        return PlainTextResponse("got a token")

    routes = [
        Route("/", home),
        Route("/me", me),
        Route("/todos", todos),
        Route("/write", write),
        Route("/token-claims", token_claims),
        Route("/swallowed", swallowed),
    ]
    config = options.pop("config", None) or stack.config()
    middleware = [Middleware(SignInMiddleware, config=config, scopes=[READ], **options)]
    return Starlette(routes=routes, middleware=middleware)


def quart_app(stack: Stack, **options: Any) -> Any:
    from quart import Quart, jsonify

    from entra_ciam.asgi import SignInMiddleware

    app = Quart("signin-test")
    acquirer = TokenAcquirer()

    @app.get("/")
    async def home() -> Any:
        user = current_user()
        return jsonify(user=user["name"] if user else None)

    @app.get("/me")
    @login_required
    async def me() -> Any:
        return jsonify(dict(current_user() or {}))

    @app.get("/todos")
    @login_required
    async def todos() -> Any:
        token = await acquirer.acquire_token_for_user_async([READ])
        async with httpx.AsyncClient() as client:
            answer = await client.get(stack.api, headers={"Authorization": f"Bearer {token}"})
        return jsonify(status=answer.status_code, items=answer.json())

    @app.get("/write")
    def write() -> Any:  # a sync view: Quart runs it in a thread
        token = acquirer.acquire_token_for_user(READWRITE)
        answer = httpx.post(
            stack.api,
            json={"description": "Buy milk"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return jsonify(status=answer.status_code, item=answer.json())

    config = options.pop("config", None) or stack.config()
    app.asgi_app = SignInMiddleware(  # type: ignore[method-assign]
        app.asgi_app, config, scopes=[READ], **options
    )
    return app


BUILDERS = {"wsgi": flask_app, "asgi": starlette_app}


def running_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    *,
    tls: bool = False,
) -> Iterator[Stack]:
    """The body of a fixture parametrized over "wsgi" and "asgi": ``signin_stack`` with this
    module's app for ``request.param``."""
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(f"{label}-{kind}")
    with signin_stack(kind, tmp, BUILDERS[kind], tls=tls) as stack:
        yield stack
