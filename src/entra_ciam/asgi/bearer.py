"""Bearer token authentication for any ASGI app (Starlette, FastAPI, plain ASGI).

Pure ASGI: headers come straight from ``scope["headers"]`` and refusals are written as raw
messages, so nothing is built per request beyond the validation itself. The validated claims go
to ``scope["state"]["claims"]`` (``request.state.claims`` in Starlette and FastAPI) and to
``current_claims()`` for the duration of the request.
"""

from __future__ import annotations

from collections.abc import Iterable

from entra_ciam.asgi.types import ASGIApp, Receive, Scope, Send
from entra_ciam.bearer import (
    WS_POLICY_VIOLATION,
    AsyncTokenValidator,
    BearerPolicy,
    close_reason,
    error_response,
)
from entra_ciam.context import STATE_KEY, claims_context
from entra_ciam.errors import AuthError

__all__ = ["BearerTokenMiddleware"]


class BearerTokenMiddleware:
    """Refuse HTTP requests and WebSocket handshakes without a valid bearer token.

    ``public_paths`` (exact) and ``public_prefixes`` (whole segments) are matched against the
    path the app routes on (``path`` without ``root_path``) and pass unauthenticated, as do CORS
    preflights unless ``allow_preflight`` is False. Lifespan events pass through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: AsyncTokenValidator,
        *,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        allow_preflight: bool = True,
    ) -> None:
        self.app = app
        self.validator = validator
        self.policy = BearerPolicy.build(
            public_paths, public_prefixes, allow_preflight=allow_preflight
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        authorization: list[str] = []
        preflight = False
        for name, value in scope.get("headers") or ():
            name = name.lower()
            if name == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif name == b"access-control-request-method":
                preflight = True
        try:
            token = self.policy.token_for(
                method=scope.get("method", "GET").upper() if kind == "http" else "GET",
                path=_route_path(scope),
                authorization=authorization,
                query_string=scope.get("query_string", b""),
                preflight=preflight and kind == "http",
            )
            if token is None:
                await self.app(scope, receive, send)
                return
            claims = await self.validator.validate_async(token)
        except AuthError as err:
            if kind == "http":
                await _refuse_http(err, send)
            else:
                await _refuse_websocket(err, send)
            return
        # A fresh scope and state dict: nothing is written into objects the server shares.
        state = dict(scope.get("state") or {})
        state[STATE_KEY] = claims
        with claims_context(claims):
            await self.app({**scope, "state": state}, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


async def _refuse_http(err: AuthError, send: Send) -> None:
    status, headers, body = error_response(err)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(err: AuthError, send: Send) -> None:
    # Closing before accepting makes the server decline the handshake (ASGI spec).
    await send(
        {"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": close_reason(err)}
    )
