"""The same small web app in Flask and in Starlette, for the sign-in end-to-end and attack tests.

Routes: ``/`` public; ``/me`` the user's claims; ``/todos`` calls the todo API with a user token;
``/write`` needs a scope not asked for at sign-in (incremental consent); ``/token-claims`` shows
what the validator says of the user's token; ``/swallowed`` catches the acquirer's exception and
answers 200 itself, which must not stop the redirect. Flask runs with its production exception
handling (a generic error handler, exceptions not propagated).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entra_ciam import AccessTokenValidator, TokenAcquirer, current_user, login_required
from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.todo_api import serving
from tests.support.webapps import (
    READ,
    READWRITE,
    LateASGI,
    LateWSGI,
    Stack,
    serving_wsgi,
    signin_stack,
)


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


def mounted(kind: str, app: Any, mount: str) -> Any:
    """``app`` served under ``mount`` as its framework's kind mounts apps: Werkzeug's
    dispatcher (``SCRIPT_NAME``) for WSGI, a Starlette ``Mount`` (``root_path``) for ASGI."""
    if kind == "wsgi":
        from werkzeug.exceptions import NotFound
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        return DispatcherMiddleware(NotFound(), {mount: app})
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount(mount, app=app)])


def forwarded_prefix(kind: str, app: Any) -> Any:
    """``app`` behind what turns ``X-Forwarded-Prefix`` into its mount point: Werkzeug's
    ProxyFix for WSGI; for ASGI, the same rule written out (what proxy-header middlewares do)."""
    if kind == "wsgi":
        from werkzeug.middleware.proxy_fix import ProxyFix

        return ProxyFix(app, x_prefix=1)

    async def prefixed(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ())
        prefix = headers.get(b"x-forwarded-prefix", b"").decode("latin-1").rstrip("/")
        if scope["type"] == "http" and prefix:
            scope = {**scope, "root_path": prefix, "path": prefix + scope["path"]}
        await app(scope, receive, send)

    return prefixed


@contextlib.contextmanager
def mounted_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mount: str
) -> Iterator[Stack]:
    """The emulator and this module's app for ``request.param`` mounted under ``mount`` on
    its server (``Stack.base`` is the server's root, without the mount); no todo API. The
    app also reads ``X-Forwarded-Prefix`` in front of its mount, as behind a proxy."""
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(f"mounted-{kind}")
    late: Any = LateWSGI() if kind == "wsgi" else LateASGI()
    server = serving_wsgi(late) if kind == "wsgi" else serving(late)
    with server as base:
        app_base = f"{base}{mount}"
        with running_devidp(
            extra_redirect_uris=[f"{app_base}/auth/redirect"],
            extra_post_logout_redirect_uris=[f"{app_base}/"],
        ) as idp:
            stack = Stack(idp, base, "", late, tmp)
            config = stack.config(
                redirect_uri=f"{app_base}/auth/redirect", post_logout_redirect_uri=None
            )
            app = mounted(kind, BUILDERS[kind](stack, config=config), mount)
            late.app = forwarded_prefix(kind, app)
            yield stack
