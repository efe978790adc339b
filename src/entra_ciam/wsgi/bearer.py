"""Bearer token authentication for any WSGI app (Flask, Django, plain WSGI).

The validated claims are put in ``environ["entra_ciam.claims"]`` and made current for
``current_claims()`` while the app runs and while its response is iterated.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from entra_ciam.bearer import (
    BearerPolicy,
    SyncTokenValidator,
    error_response,
    preflight_answer,
    status_line,
)
from entra_ciam.context import ENVIRON_KEY
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import integration_for_app
from entra_ciam.requeststate import REQUEST, RequestState, claims_state
from entra_ciam.wsgi.exchange import close_in, discard, path_info, respond, status_code

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo

__all__ = ["BearerTokenMiddleware"]


class BearerTokenMiddleware:
    """Refuse requests without a valid ``Authorization: Bearer`` token (RFC 6750 answers).

    ``public_paths`` (exact) and ``public_prefixes`` (whole segments) are matched against
    ``PATH_INFO`` and pass unauthenticated, as do CORS preflights unless ``allow_preflight`` is
    False; the app's answer to such a preflight goes out only if it is a CORS answer (see
    ``entra_ciam.bearer.preflight_answer``). Tokens in the query string are refused, never read.
    """

    def __init__(
        self,
        app: WSGIApplication,
        validator: SyncTokenValidator,
        *,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        allow_preflight: bool = True,
    ) -> None:
        self.app = app
        self.integration = integration_for_app(app)
        self.validator = validator
        self.policy = BearerPolicy.build(
            public_paths, public_prefixes, allow_preflight=allow_preflight
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = path_info(environ)
        preflight = "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        try:
            token = self.policy.token_for(
                method=method,
                path=path,
                authorization=[] if authorization is None else [authorization],
                query_string=environ.get("QUERY_STRING", ""),
                preflight=preflight,
            )
            claims = None if token is None else self.validator.validate(token)
        except AuthError as err:
            return _refuse(start_response, err)
        # A copied context keeps the claims out of the server thread's own context entirely,
        # so nothing is left behind for the next request that thread serves.
        ctx = contextvars.copy_context()
        if claims is not None:  # not a public path
            environ[ENVIRON_KEY] = claims
        state = claims_state(self.integration, claims)
        ctx.run(REQUEST.set, state)
        if claims is None and self.policy.passes_as_preflight(method, path, preflight):
            return self._preflight(ctx, state, environ, start_response)
        started = False

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        body: Iterable[bytes] | None = None
        try:
            body = ctx.run(self.app, environ, start)
        except AuthError as err:
            # A guard with no framework to answer raised it: answer here. Had the app already
            # started its response, start_response re-raises (PEP 3333) and the server decides.
            return _refuse(start_response, err, sys.exc_info() if started else None)
        finally:
            if body is None:  # the app raised: no body will be iterated or closed
                state.end()
        return _InContext(ctx, body, state)

    def _preflight(
        self,
        ctx: contextvars.Context,
        state: RequestState,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> list[bytes]:
        """Run the app for a preflight that passed unauthenticated; send what the sans-IO
        core lets out of its answer (a CORS answer without body, or the 401 challenge).

        Nothing of the app's reaches the server until the app has started its response: the
        app may do so only once its body is first iterated (PEP 3333), so the body is
        iterated until then, its chunks dropped, and closed.
        """
        answer: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]  # a second call (with exc_info) replaces the first
            return discard

        body: Iterable[bytes] | None = None
        try:
            body = ctx.run(self.app, environ, start)
            if not answer:
                chunks = ctx.run(iter, body)
                while not answer and ctx.run(next, chunks, None) is not None:
                    pass
        except AuthError:
            answer.clear()  # a guard refused: the same 401 as an answer without CORS headers
        finally:
            if body is None:
                state.end()
            else:
                close_in(ctx, body, state)
        if answer:
            status, headers, content = preflight_answer(status_code(answer[0]), answer[1])
        else:
            status, headers, content = preflight_answer(401, [])
        start_response(status_line(status), headers)  # complete: Content-Length included
        return [content]


def _refuse(
    start_response: StartResponse, err: AuthError, exc_info: OptExcInfo | None = None
) -> list[bytes]:
    status, headers, body = error_response(err)
    return respond(start_response, status, headers, body, exc_info)


class _InContext:
    """The app's response iterable, iterated and closed inside the request's context; the
    request's state ends once it is closed, as the ASGI middleware's does when the app returns."""

    def __init__(
        self, ctx: contextvars.Context, body: Iterable[bytes], state: RequestState
    ) -> None:
        self._ctx = ctx
        self._body = body
        self._state = state

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._ctx.run(iter, self._body)
        while True:
            try:
                chunk = self._ctx.run(next, iterator)
            except StopIteration:
                return
            yield chunk

    def close(self) -> None:
        close_in(self._ctx, self._body, self._state)
