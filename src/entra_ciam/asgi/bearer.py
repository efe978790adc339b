"""Bearer token authentication for any ASGI app (Starlette, FastAPI, plain ASGI).

Pure ASGI: headers come straight from ``scope["headers"]`` and refusals are written as raw
messages, so nothing is built per request beyond the validation itself. The validated claims go
to ``scope["state"]["claims"]`` (``request.state.claims`` in Starlette and FastAPI) and to
``current_claims()`` for the duration of the request.
"""

from __future__ import annotations

from collections.abc import Iterable

from entra_ciam.asgi.exchange import (
    encode_headers,
    header_values,
    route_path,
    send_response,
    with_state,
)
from entra_ciam.asgi.startup import StartupChecked, already_built
from entra_ciam.asgi.types import ASGIApp, Message, Receive, Scope, Send
from entra_ciam.bearer import (
    WS_POLICY_VIOLATION,
    AsyncTokenValidator,
    BearerPolicy,
    close_reason,
    error_response,
    preflight_answer,
)
from entra_ciam.context import STATE_KEY
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import integration_for_app
from entra_ciam.requeststate import REQUEST, claims_state

__all__ = ["BearerTokenMiddleware"]


class BearerTokenMiddleware(StartupChecked):
    """Refuse HTTP requests and WebSocket handshakes without a valid bearer token.

    ``public_paths`` (exact) and ``public_prefixes`` (whole segments) are matched against the
    path the app routes on (``path`` without ``root_path``) and pass unauthenticated, as do CORS
    preflights unless ``allow_preflight`` is False; the app's answer to such a preflight goes out
    only if it is a CORS answer (see ``entra_ciam.bearer.preflight_answer``). Lifespan events
    pass through untouched.
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
        if already_built(self):
            return
        self.app = app
        self.integration = integration_for_app(app)
        self.validator = validator
        self.policy = BearerPolicy.build(
            public_paths, public_prefixes, allow_preflight=allow_preflight
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        found = header_values(scope, _HEADERS)
        method = scope.get("method", "GET").upper() if kind == "http" else "GET"
        path = route_path(scope)
        preflight = b"access-control-request-method" in found and kind == "http"
        try:
            token = self.policy.token_for(
                method=method,
                path=path,
                authorization=found.get(b"authorization", []),
                query_string=scope.get("query_string", b""),
                preflight=preflight,
            )
            claims = None if token is None else await self.validator.validate_async(token)
        except AuthError as err:
            await _refuse(kind, err, send)
            return
        if claims is not None:  # not a public path
            scope = with_state(scope, STATE_KEY, claims)
        elif self.policy.passes_as_preflight(method, path, preflight):
            send = _PreflightSend(send)
        state = claims_state(self.integration, claims)
        bound = REQUEST.set(state)
        try:
            await self._call_app(scope, receive, send)
        finally:
            REQUEST.reset(bound)
            state.end()

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer an AuthError it raises (a guard with no framework to answer).

        When the app had already started its response, sending ours fails and the original
        error goes on to the server, as any error after the start must.
        """
        try:
            await self.app(scope, receive, send)
        except AuthError as err:
            try:
                await _refuse(scope["type"], err, send)
            except Exception:
                raise err from None


_HEADERS = frozenset((b"authorization", b"access-control-request-method"))


class _PreflightSend:
    """``send`` for an app answering a preflight that passed unauthenticated: its
    ``http.response.start`` goes through the sans-IO core, which lets a CORS answer out without
    its body or puts the 401 challenge in its place; the app's body messages are dropped."""

    __slots__ = ("_answered", "_send")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._answered = False

    async def __call__(self, message: Message) -> None:
        if self._answered:
            return  # the app's body (or trailers): the answer is complete already
        if message["type"] != "http.response.start":
            await self._send(message)
            return
        self._answered = True
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in message.get("headers") or ()
        ]
        status, out, body = preflight_answer(int(message["status"]), headers)
        await self._send(
            {"type": "http.response.start", "status": status, "headers": encode_headers(out)}
        )
        await self._send({"type": "http.response.body", "body": body})


async def _refuse(kind: str, err: AuthError, send: Send) -> None:
    if kind == "http":
        status, headers, body = error_response(err)
        await send_response(send, status, headers, body)
    else:
        # Closing before accepting makes the server decline the handshake (ASGI spec).
        await send(
            {"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": close_reason(err)}
        )
