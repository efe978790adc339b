"""Sign-in for any WSGI app (Flask, Django, plain WSGI): the thin driver of ``entra_ciam.signin``.

The steps run inline (they block, as WSGI does). The app runs in a copied context holding the
request's sign-in state, so ``current_user()`` and ``TokenAcquirer`` work in views and while the
response is iterated. When token acquisition needs the user, the redirect it prepared replaces
whatever the app answered; the exception raised in views comes from the integration of the
wrapped framework (for Flask, a Werkzeug ``HTTPException`` Flask answers with the redirect itself
instead of turning it into a 500).
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIApplication

from entra_ciam.requeststate import REQUEST, RequestState, signin_state
from entra_ciam.sessions import SessionStoreUnavailableError
from entra_ciam.signin.adapter import SignInAdapter
from entra_ciam.signin.context import RequestContext
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.flow import SignIn
from entra_ciam.signin.messages import MAX_FORM_BYTES, Request, Response
from entra_ciam.signin.pages import store_unavailable_page
from entra_ciam.wsgi.exchange import (
    close_in,
    discard,
    path_info,
    respond,
    script_name,
    status_code,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from _typeshed import OptExcInfo

__all__ = ["SignInMiddleware"]

USER_ENVIRON_KEY = "entra_ciam.user"
CONTEXT_ENVIRON_KEY = "entra_ciam.signin"


def request_from_environ(environ: WSGIEnvironment) -> Request:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return Request(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=path_info(environ),
        root_path=script_name(environ),
        query_string=str(environ.get("QUERY_STRING", "")),
        cookie_header=str(environ.get("HTTP_COOKIE", "")),
        content_type=str(environ.get("CONTENT_TYPE", "")),
        host=str(host),
        origin=str(environ.get("HTTP_ORIGIN", "")),
        fetch_site=str(environ.get("HTTP_SEC_FETCH_SITE", "")),
    )


def _read_body(environ: WSGIEnvironment) -> bytes:
    """At most MAX_FORM_BYTES + 1 bytes, and only with a declared length (never block)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0:
        return b""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    data: bytes = stream.read(min(length, MAX_FORM_BYTES + 1))
    return data


@dataclasses.dataclass(slots=True)
class _Exchange:
    """What happened to the response of one app call."""

    ctx: RequestContext
    signin: SignIn
    start_response: StartResponse
    started: bool = False
    replacement: Response | None = None

    def start(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Any:
        if self.started and exc_info is None:
            raise RuntimeError("start_response called twice without exc_info")
        if self.started:  # an error after the headers went out: nothing left to decide
            return self.start_response(status, headers, exc_info)
        self.started = True
        ctx, signin = self.ctx, self.signin
        if ctx.pending is None:
            # The usual case: the app's headers go out as they are, maybe with our cookie
            # added; only a store failure replaces them.
            added = signin.finish(ctx)
            if not isinstance(added, Response):
                return self.start_response(status, [*headers, *added], exc_info)
            final = added
        else:  # the sign-in redirect replaces the app's answer, keeping the app's own cookies
            final, _ = signin.close(ctx, Response(status_code(status), list(headers)))
        self.replacement = final
        respond(self.start_response, final.status, final.headers, final.body, exc_info)
        return discard

    def answer(self, response: Response) -> list[bytes]:
        """Send ``response`` instead of the app's (the app raised before starting one)."""
        final, _ = self.signin.close(self.ctx, response)
        self.started = True
        return _send(self.start_response, final)


def _send(start_response: StartResponse, response: Response, *, head: bool = False) -> list[bytes]:
    return respond(start_response, response.status, response.headers, response.body, head=head)


class SignInMiddleware(SignInAdapter[WSGIApplication]):
    """Adds ``{prefix}/signin``, ``{prefix}/redirect`` and ``{prefix}/signout`` to a WSGI app.

    Takes an :class:`EntraConfig` (``EntraConfig.from_env()`` when omitted) and the options of
    :class:`entra_ciam.signin.SignIn`, or a ready ``signin``. ``acquirer`` is a
    ``TokenAcquirer`` sharing this middleware's MSAL set-up.
    """

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The view is built now, not when asked for as the ASGI adapter does: built later it
        # would hold the environ, which holds the context (CONTEXT_ENVIRON_KEY), a cycle that
        # kept every request alive until the garbage collector ran.
        request = request_from_environ(environ)
        if self.signin.needs_body(request):
            request = request.with_body(_read_body(environ))
        opened = self.signin.open(
            request.cookie_header, lambda: request, self.integration.interaction_error
        )
        if isinstance(opened, Response):
            return _send(start_response, opened)
        ctx = opened
        if self.signin.is_route(request.path):
            final, _ = self.signin.close(ctx, self.signin.handle(ctx))
            return _send(start_response, final, head=request.method == "HEAD")

        environ[USER_ENVIRON_KEY] = ctx.user
        environ[CONTEXT_ENVIRON_KEY] = ctx
        exchange = _Exchange(ctx, self.signin, start_response)
        context = contextvars.copy_context()
        state = signin_state(self.integration, ctx)
        context.run(REQUEST.set, state)
        body: Iterable[bytes] | None = None
        try:
            body = context.run(self.app, environ, exchange.start)
        except InteractionRequiredError as exc:
            if exchange.started:
                raise
            return exchange.answer(ctx.pending or exc.redirect_response)
        except SessionStoreUnavailableError:
            if exchange.started:
                raise
            return exchange.answer(store_unavailable_page())
        finally:
            if body is None:  # the app raised: no body will be iterated or closed
                state.end()
        if exchange.replacement is not None:
            close_in(context, body, state)
            return [exchange.replacement.body]
        return _Body(context, body, exchange, state)


class _Body:
    """The app's body, iterated in the request's context; swapped if the response was replaced.

    Covers apps that call ``start_response`` only when iterated (generators).
    """

    def __init__(
        self,
        context: contextvars.Context,
        body: Iterable[bytes],
        exchange: _Exchange,
        state: RequestState,
    ) -> None:
        self._context = context
        self._body = body
        self._exchange = exchange
        self._state = state

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._context.run(iter, self._body)
        while True:
            try:
                chunk = self._context.run(next, iterator)
            except StopIteration:
                break
            if self._exchange.replacement is not None:
                break
            yield chunk
        if self._exchange.replacement is not None:
            yield self._exchange.replacement.body

    def close(self) -> None:
        close_in(self._context, self._body, self._state)
