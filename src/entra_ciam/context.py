"""The claims of the request being handled, set by the bearer middlewares.

A ContextVar follows the request into sync views run in a thread pool (Starlette, FastAPI copy the
context) and stays private to each request and task, so no framework object is needed to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entra_ciam.errors import MissingTokenError
from entra_ciam.requeststate import REQUEST, RequestState, bound

if TYPE_CHECKING:
    from entra_ciam.claims import Claims

__all__ = ["ENVIRON_KEY", "STATE_KEY", "claims_context", "current_claims", "get_claims"]

# Where the WSGI middleware leaves the claims: ``environ["entra_ciam.claims"]``.
ENVIRON_KEY = "entra_ciam.claims"
# Where the ASGI middleware leaves them: ``scope["state"]["claims"]``, which Starlette and
# FastAPI show as ``request.state.claims``.
STATE_KEY = "claims"


def current_claims() -> Claims:
    """The validated claims of the current request.

    Raises MissingTokenError (401) when the request was not authenticated by a bearer middleware,
    so code that forgets the middleware fails closed instead of running without a user.
    """
    claims = REQUEST.get().claims
    if claims is None:
        raise MissingTokenError()
    return claims


def get_claims() -> Claims | None:
    """The validated claims of the current request, or None (for optional authentication)."""
    return REQUEST.get().claims


def claims_context(claims: Claims | None) -> bound:
    """Make ``claims`` current for the duration of the block, then restore what was there."""
    outer = REQUEST.get()
    return bound(RequestState(outer.integration, outer.signin, claims))
