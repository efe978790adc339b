"""The claims of the request being handled, set by the bearer middlewares.

A ContextVar follows the request into sync views run in a thread pool (Starlette, FastAPI copy the
context) and stays private to each request and task, so no framework object is needed to read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from entra_ciam.contextvalue import Binding, bound
from entra_ciam.errors import MissingTokenError

if TYPE_CHECKING:
    from entra_ciam.claims import Claims

__all__ = [
    "ENVIRON_KEY",
    "STATE_KEY",
    "claims_binding",
    "claims_context",
    "current_claims",
    "get_claims",
]

# Where the WSGI middleware leaves the claims: ``environ["entra_ciam.claims"]``.
ENVIRON_KEY = "entra_ciam.claims"
# Where the ASGI middleware leaves them: ``scope["state"]["claims"]``, which Starlette and
# FastAPI show as ``request.state.claims``.
STATE_KEY = "claims"

_claims: ContextVar[Claims | None] = ContextVar("entra_ciam.claims", default=None)


def current_claims() -> Claims:
    """The validated claims of the current request.

    Raises MissingTokenError (401) when the request was not authenticated by a bearer middleware,
    so code that forgets the middleware fails closed instead of running without a user.
    """
    claims = _claims.get()
    if claims is None:
        raise MissingTokenError()
    return claims


def get_claims() -> Claims | None:
    """The validated claims of the current request, or None (for optional authentication)."""
    return _claims.get()


def claims_binding(claims: Claims | None) -> Binding:
    """What makes ``claims`` current for the app call: the middlewares bind it with the framework
    serving the request, in one object: ``with serving(integration, claims_binding(claims))``."""
    return (_claims, claims)


def claims_context(claims: Claims | None) -> bound:
    """Make ``claims`` current for the duration of the block, then restore what was there."""
    return bound(claims_binding(claims))


def set_claims(claims: Claims | None) -> None:
    """Set the claims in the current context; for drivers that run the request in a copied one."""
    _claims.set(claims)
