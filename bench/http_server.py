"""The todo API's list endpoint served for a load benchmark, in a process of its own.

``--app plain`` has no authentication, ``ours`` is the example app itself
(``examples.starlette_api.create_app``: BearerTokenMiddleware + ``require_scope_or_app_permission``)
and ``pyjwt`` protects the same endpoint the way fastapi-azure-auth does: the ``kid`` from the
unverified header, the key from a cached JWKS (PyJWT's ``PyJWKClient``), then ``jwt.decode`` with
issuer, audience and time checks, then tenant and scope. On FastAPI, ``faa`` is the real
fastapi-azure-auth (its ``B2CMultiTenantAuthorizationCodeBearer``, the one that takes a discovery
URL, as a ``Security`` dependency with the read scope) and ``ours-fastapi`` is the same route with
``BearerTokenMiddleware`` and ``require_scope``. All share the store and the response, so the
difference between them is the authentication (and, for the FastAPI pair, FastAPI). Prints
``READY <url>`` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt
import uvicorn
from examples.starlette_api.storage import TodoStore
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.support.tokens import API_CLIENT_ID, TENANT_ID, USER_OID

from entra_ciam import AccessTokenValidator

PATH = "/api/todolist"
READ_SCOPES = frozenset({"Todolist.Read", "Todolist.ReadWrite"})
_PRIVATE = {"Cache-Control": "no-store"}


async def _list_for(request: Request, owner: str) -> Response:
    store: TodoStore = request.app.state.store
    items = await run_in_threadpool(store.list_items, owner)
    return JSONResponse([item.to_json() for item in items], headers=_PRIVATE)


async def plain_list(request: Request) -> Response:
    return await _list_for(request, USER_OID)


async def pyjwt_list(request: Request) -> Response:
    claims: dict[str, Any] = request.scope["state"]["claims"]
    if READ_SCOPES.isdisjoint(str(claims.get("scp", "")).split()):
        return JSONResponse({"error": "insufficient_scope"}, status_code=403)
    return await _list_for(request, str(claims["oid"]).lower())


class PyJWTBearer:
    """fastapi-azure-auth's validation steps, as a pure ASGI middleware like ours."""

    def __init__(self, app: Any, jwks_uri: str, issuer: str) -> None:
        self.app = app
        self.issuer = issuer
        self.keys = jwt.PyJWKClient(jwks_uri, cache_keys=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise jwt.InvalidTokenError("no bearer token")
            key = self.keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=API_CLIENT_ID,
                issuer=self.issuer,
                leeway=60,
                options={"require": ["exp", "nbf", "iat", "aud", "iss", "sub", "tid"]},
            )
            if claims["tid"] != TENANT_ID or claims.get("ver") != "2.0":
                raise jwt.InvalidTokenError("wrong tenant or version")
        except jwt.PyJWTError:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"www-authenticate", b'Bearer error="invalid_token"')],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        state = dict(scope.get("state") or {})
        state["claims"] = claims
        await self.app({**scope, "state": state}, receive, send)


def fastapi_app(kind: str, store: TodoStore, authority: str, issuer: str) -> Any:
    """The list endpoint on FastAPI: fastapi-azure-auth's guard (``faa``) or ours."""
    from fastapi import FastAPI, Security

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store = store
    if kind == "faa":
        from fastapi_azure_auth import B2CMultiTenantAuthorizationCodeBearer

        async def issuer_of(tid: str) -> str:
            if tid != TENANT_ID:
                raise ValueError("unknown tenant")
            return issuer

        scheme = B2CMultiTenantAuthorizationCodeBearer(
            app_client_id=API_CLIENT_ID,
            openid_config_url=f"{authority}/v2.0/.well-known/openid-configuration",
            openapi_authorization_url=f"{authority}/oauth2/v2.0/authorize",
            openapi_token_url=f"{authority}/oauth2/v2.0/token",
            iss_callable=issuer_of,
            leeway=60,
        )

        @app.get(PATH, dependencies=[Security(scheme, scopes=["Todolist.Read"])])
        async def faa_list(request: Request) -> Response:
            return await _list_for(request, str(request.state.user.oid).lower())

        return app

    from entra_ciam import current_claims, require_scope
    from entra_ciam.asgi import BearerTokenMiddleware

    @app.get(PATH)
    @require_scope("Todolist.Read", "Todolist.ReadWrite")
    async def ours_list(request: Request) -> Response:
        return await _list_for(request, current_claims().oid)

    validator = AccessTokenValidator(authority, API_CLIENT_ID)
    return BearerTokenMiddleware(app, validator=validator)


def build(kind: str, db: str, authority: str, jwks_uri: str, issuer: str) -> Any:
    store = TodoStore(db)
    if not store.list_items(USER_OID):
        for text in ("buy milk", "write docs", "ship it"):
            store.add(USER_OID, text)
    if kind == "ours":
        from examples.starlette_api.app import create_app

        validator = AccessTokenValidator(authority, API_CLIENT_ID)
        return create_app(db_path=db, validator=validator)
    if kind in ("faa", "ours-fastapi"):
        return fastapi_app(kind, store, authority, issuer)
    handler = plain_list if kind == "plain" else pyjwt_list
    app = Starlette(routes=[Route(PATH, handler, methods=["GET"])])
    app.state.store = store
    if kind == "pyjwt":
        return PyJWTBearer(app, jwks_uri, issuer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--app", choices=["plain", "ours", "pyjwt", "faa", "ours-fastapi"], required=True
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--authority", required=True)
    parser.add_argument("--jwks-uri", required=True)
    parser.add_argument("--issuer", required=True)
    args = parser.parse_args()
    app = build(args.app, args.db, args.authority, args.jwks_uri, args.issuer)
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP (see
    # tests/support/todo_api.py); without it every answer waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    print(f"READY http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
