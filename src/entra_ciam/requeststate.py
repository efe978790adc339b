"""What the library knows of the request being served: one value in one ContextVar.

Views, guards and ``TokenAcquirer`` read it anywhere below the middleware, in whatever task or
worker thread the request's context reaches (Flask's and Starlette's runners copy the context),
and it never leaks to another request:

- ``integration``: the framework answering the request (``entra_ciam.frameworks``);
- ``signin``: the sign-in state, a ``RequestContext`` (``entra_ciam.signin.context``);
- ``claims``: the claims a bearer middleware validated (``entra_ciam.context``).

One value rather than a ContextVar each, because every page pays for each set and reset: a
middleware makes one :class:`RequestState` (the fields it does not own, such as an outer bearer
middleware's claims, copied from the current one: :func:`claims_state`, :func:`signin_state`)
and makes it current for the app call with :class:`bound`, which sets :data:`REQUEST` once,
resets it once and ends the state. The ASGI middlewares write those three steps out in
``try``/``finally`` (three frames fewer on every page); the WSGI ones set it in the copied
context they run the app in, and end it when the server closes the response (or at once, when
the app raised).

Ending it matters: a callback the server schedules while the request runs captures the
context as it is then (uvicorn's keep-alive timer does, for seconds, and a cancelled timer
stays in the event loop until it is swept), so without ``end()`` every request's session,
claims and sign-in state stayed alive long after it, and the garbage collector, counting
them, ran every few dozen requests (a tenth of a signed-in page's time in
``bench/signin_load.py``). Ended, a captured state holds no user either.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entra_ciam.claims import Claims
    from entra_ciam.frameworks import Integration
    from entra_ciam.signin.context import RequestContext

__all__ = ["NOTHING", "REQUEST", "RequestState", "bound", "claims_state", "signin_state"]


class RequestState:
    """The library's state for one request; None where no middleware supplied it."""

    __slots__ = ("claims", "integration", "signin")

    def __init__(
        self,
        integration: Integration | None = None,
        signin: RequestContext | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.integration = integration
        self.signin = signin
        self.claims = claims

    def end(self) -> None:
        """The request is over: drop what it held (see the module docstring)."""
        self.signin = None
        self.claims = None

    def __repr__(self) -> str:
        return (
            f"<RequestState integration={self.integration!r} signed_in={self.signin is not None}>"
        )


NOTHING = RequestState()  # never ended: nothing to drop
REQUEST: ContextVar[RequestState] = ContextVar("entra_ciam.request", default=NOTHING)


def claims_state(integration: Integration | None, claims: Claims | None) -> RequestState:
    """A bearer middleware's state for its request: ``claims`` validated, the sign-in state
    kept; on a public path (``claims`` None) whatever an outer layer validated stays."""
    outer = REQUEST.get()
    return RequestState(integration, outer.signin, outer.claims if claims is None else claims)


def signin_state(integration: Integration | None, ctx: RequestContext) -> RequestState:
    """A sign-in middleware's state for its request: ``ctx``, and the claims an outer bearer
    middleware validated."""
    return RequestState(integration, ctx, REQUEST.get().claims)


class bound:  # lower case: it reads as a function, ``with bound(state):``
    """``state`` is current inside the block, then what was current before, also when the block
    raises; the state is ended afterwards."""

    __slots__ = ("_state", "_token")

    def __init__(self, state: RequestState) -> None:
        self._state = state

    def __enter__(self) -> RequestState:
        self._token: Token[RequestState] = REQUEST.set(self._state)
        return self._state

    def __exit__(self, *exc: object) -> None:
        REQUEST.reset(self._token)
        self._state.end()
