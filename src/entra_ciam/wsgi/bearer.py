"""Bearer token authentication for any WSGI app (Flask, Django, plain WSGI).

The validated claims are put in ``environ["entra_ciam.claims"]`` and made current for
``current_claims()`` while the app runs and while its response is iterated.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from entra_ciam.bearer import BearerPolicy, SyncTokenValidator, error_response, status_line
from entra_ciam.context import ENVIRON_KEY, set_claims
from entra_ciam.errors import AuthError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["BearerTokenMiddleware"]


class BearerTokenMiddleware:
    """Refuse requests without a valid ``Authorization: Bearer`` token (RFC 6750 answers).

    ``public_paths`` (exact) and ``public_prefixes`` (whole segments) are matched against
    ``PATH_INFO`` and pass unauthenticated, as do CORS preflights unless ``allow_preflight`` is
    False. Tokens in the query string are refused, never read.
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
        self.validator = validator
        self.policy = BearerPolicy.build(
            public_paths, public_prefixes, allow_preflight=allow_preflight
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION")
        try:
            token = self.policy.token_for(
                method=environ.get("REQUEST_METHOD", "GET").upper(),
                path=_path(environ),
                authorization=[] if authorization is None else [authorization],
                query_string=environ.get("QUERY_STRING", ""),
                preflight="HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ,
            )
            if token is None:
                return self.app(environ, start_response)
            claims = self.validator.validate(token)
        except AuthError as err:
            status, headers, body = error_response(err)
            start_response(status_line(status), headers)
            return [body]
        environ[ENVIRON_KEY] = claims
        # A copied context keeps the claims out of the server thread's own context entirely,
        # so nothing is left behind for the next request that thread serves.
        ctx = contextvars.copy_context()
        ctx.run(set_claims, claims)
        return _InContext(ctx, ctx.run(self.app, environ, start_response))


def _path(environ: WSGIEnvironment) -> str:
    # PEP 3333 carries the path as latin-1 decoded bytes; ASGI gives UTF-8 text. Match alike.
    raw: str = environ.get("PATH_INFO") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


class _InContext:
    """The app's response iterable, iterated and closed inside the request's context."""

    def __init__(self, ctx: contextvars.Context, body: Iterable[bytes]) -> None:
        self._ctx = ctx
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._ctx.run(iter, self._body)
        while True:
            try:
                chunk = self._ctx.run(next, iterator)
            except StopIteration:
                return
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._ctx.run(close)
