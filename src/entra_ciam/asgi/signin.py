"""Sign-in for any ASGI app (Starlette, FastAPI): the thin driver of ``entra_ciam.signin``.

The steps are the WSGI adapter's: they block, so they run in a worker thread (the session steps
only when the store blocks; the routes always, as they may call Entra). The app runs with the
request's sign-in state current, so ``current_user()`` and ``TokenAcquirer`` work in endpoints.
When token acquisition needs the user, the redirect it prepared replaces whatever the app
answered; the exception comes from the integration of the wrapped framework (in Starlette an
``HTTPException`` the app answers by itself, in Quart a Werkzeug one).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from entra_ciam.asgi.exchange import (
    cookie_header,
    encode_headers,
    header_values,
    root_path,
    route_path,
    send_response,
    with_state,
)
from entra_ciam.asgi.startup import StartupChecked
from entra_ciam.asgi.types import ASGIApp, Message, Receive, Scope, Send
from entra_ciam.requeststate import REQUEST, signin_state
from entra_ciam.sessions import SessionStoreUnavailableError
from entra_ciam.signin.adapter import SignInAdapter
from entra_ciam.signin.context import RequestContext
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.flow import SignIn
from entra_ciam.signin.messages import MAX_FORM_BYTES, Request, Response
from entra_ciam.signin.pages import store_unavailable_page

__all__ = ["SignInMiddleware"]

# The signed-in user's claims (or None): ``scope["state"]["user"]``, ``request.state.user``.
USER_STATE_KEY = "user"

T = TypeVar("T")


_HEADERS = frozenset((b"content-type", b"host", b"origin", b"sec-fetch-site"))


def request_from_scope(scope: Scope) -> Request:
    # Built for the sign-in routes and a redirect to sign in: the fields are passed in order (a
    # named tuple's keyword arguments cost more than its whole construction), absent headers
    # skip their join.
    header = header_values(scope, _HEADERS).get
    root = root_path(scope)
    content_type = header(b"content-type")
    host = header(b"host")
    origin = header(b"origin")
    fetch_site = header(b"sec-fetch-site")
    return Request(
        str(scope.get("method", "GET")).upper(),
        route_path(scope, root),
        root,
        bytes(scope.get("query_string") or b"").decode("latin-1"),
        cookie_header(scope),
        content_type[0] if content_type else "",
        b"",
        host[0] if host else "localhost",
        # Repeated, they join into a value no check accepts.
        ", ".join(origin) if origin else "",
        ", ".join(fetch_site) if fetch_site else "",
    )


async def _read_body(receive: Receive) -> bytes:
    """The request body, but no more than MAX_FORM_BYTES + 1 bytes of it."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_FORM_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = bytes(message.get("body") or b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)[: MAX_FORM_BYTES + 1]


async def _send(send: Send, response: Response) -> None:
    await send_response(send, response.status, response.headers, response.body)


async def _store_call(signin: SignIn, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``, in a worker thread when the session store blocks."""
    if signin.sessions.store.blocking:
        return await asyncio.to_thread(func, *args)
    return func(*args)


async def _nothing() -> None:
    """What sending a body of a replaced answer does."""


@dataclasses.dataclass(slots=True)
class _Exchange:
    """What happened to the response of one app call; the app sends through :meth:`send`.

    A bound method of this one per-request object, rather than a closure built on every request,
    as the WSGI adapter's ``_Exchange.start``.
    """

    signin: SignIn
    ctx: RequestContext
    downstream: Send
    started: bool = False
    replaced: bool = False

    def send(self, message: Message) -> Awaitable[None]:
        """The app's ``send``: a plain function that hands back what the server's ``send``
        returns, so the usual messages (the body; the start, once the session is saved with
        nothing to add) cost no coroutine of ours, two per page otherwise."""
        if message["type"] == "http.response.start" and not self.started:
            self.started = True
            ctx, signin = self.ctx, self.signin
            if ctx.pending is None and not signin.sessions.store.blocking:
                # The usual case: the app's answer goes out as the app encoded it, maybe with
                # our cookie added; only a store failure replaces it.
                added = signin.finish(ctx)
                if not added:
                    return self.downstream(message)
                return self._started(message, added)
            return self._start(message)
        if self.replaced and message["type"] == "http.response.body":
            return _nothing()
        return self.downstream(message)

    def _started(
        self, message: Message, added: tuple[tuple[str, str], ...] | Response
    ) -> Awaitable[None]:
        """The app's start message after ``SignIn.finish``: with our headers added, or replaced
        by the page ``finish`` answered with (the store is down)."""
        if isinstance(added, Response):
            self.replaced = True
            return _send(self.downstream, added)
        headers = [*(message.get("headers") or ()), *encode_headers(added)]
        return self.downstream({**message, "headers": headers})

    async def _start(self, message: Message) -> None:
        """The start message when deciding takes a worker thread (a store that blocks) or the
        sign-in redirect replaces the app's answer, keeping the app's own cookies."""
        ctx, signin = self.ctx, self.signin
        if ctx.pending is None:
            await self._started(message, await _store_call(signin, signin.finish, ctx))
            return
        raw = message.get("headers") or ()
        decoded = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        app_response = Response(int(message["status"]), decoded)
        final, _ = await _store_call(signin, signin.close, ctx, app_response)
        self.replaced = True
        await _send(self.downstream, final)


class SignInMiddleware(StartupChecked, SignInAdapter[ASGIApp]):
    """Adds ``{prefix}/signin``, ``{prefix}/redirect`` and ``{prefix}/signout`` to an ASGI app.

    Takes an :class:`EntraConfig` (``EntraConfig.from_env()`` when omitted) and the options of
    :class:`entra_ciam.signin.SignIn` (or a ready ``signin``); use it as
    ``SignInMiddleware(app, config)`` or
    ``Middleware(SignInMiddleware, config=config)``. ``acquirer`` is a ``TokenAcquirer``
    sharing this middleware's MSAL set-up. WebSocket and lifespan traffic passes untouched.
    """

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One of the sign-in routes: the whole request is read (and the body of a form_post)."""
        signin = self.signin
        request = request_from_scope(scope)
        if signin.needs_body(request):
            request = request.with_body(await _read_body(receive))
        opened = await _store_call(
            signin,
            signin.open,
            request.cookie_header,
            lambda: request,
            self.integration.interaction_error,
        )
        if isinstance(opened, Response):
            await _send(send, opened)
            return
        response = await asyncio.to_thread(signin.handle, opened)
        final, _ = await _store_call(signin, signin.close, opened, response)
        await _send(send, final)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        signin = self.signin
        if signin.is_route(route_path(scope)):
            await self._route(scope, receive, send)
            return
        make_error = self.integration.interaction_error
        cookies = cookie_header(scope)  # all a page of a signed-in user reads of the request
        # A page: the request's view is built only if something asks (a redirect to sign in).
        describe = lambda: request_from_scope(scope)  # noqa: E731 (a closure: cheaper than partial)
        if signin.sessions.store.blocking:
            opened = await asyncio.to_thread(signin.open, cookies, describe, make_error)
        else:
            # _store_call written out: every request opens its session, and a store
            # that does not block (memory) is called right here, without a coroutine around it.
            opened = signin.open(cookies, describe, make_error)
        if isinstance(opened, Response):
            await _send(send, opened)
            return
        ctx = opened
        inner = with_state(scope, USER_STATE_KEY, ctx.user)  # ``scope`` stays what describe reads
        exchange = _Exchange(signin, ctx, send)
        state = signin_state(self.integration, ctx)
        bound = REQUEST.set(state)
        try:
            await self.app(inner, receive, exchange.send)
        except InteractionRequiredError as exc:
            # Raised through the app (no framework, or a framework that re-raises after
            # answering, like Starlette's ServerErrorMiddleware): answer with the sign-in.
            if not exchange.started:
                pending = ctx.pending or exc.redirect_response
                final, _ = await _store_call(signin, signin.close, ctx, pending)
                await _send(send, final)
            elif not exchange.replaced:
                raise
        except SessionStoreUnavailableError:
            if exchange.started:
                raise
            await _send(send, store_unavailable_page())
        finally:
            REQUEST.reset(bound)
            state.end()
