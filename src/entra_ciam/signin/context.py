"""The sign-in state of the request being handled, for views and ``TokenAcquirer``.

The middlewares put a :class:`RequestContext` in a ContextVar for the duration of the app call;
it follows the request into thread pools (Flask's and Starlette's runners copy the context) and
never leaks to another request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Request, Response
from entra_ciam.signin.returnpath import UnsafeReturnPathError, check_return_path

if TYPE_CHECKING:
    import msal

    from entra_ciam.sessions import Session
    from entra_ciam.signin.flow import SignIn

__all__ = ["USER_KEY", "RequestContext", "current_context", "current_user"]

USER_KEY = "entra_ciam.user"  # the ID token claims, inside the session data

InteractionErrorFactory = Callable[[str, Response], InteractionRequiredError]

_current: ContextVar[RequestContext | None] = ContextVar("entra_ciam.signin", default=None)


@dataclasses.dataclass(eq=False)
class RequestContext:
    """One request seen by the sign-in middleware: its session and what must happen to it."""

    signin: SignIn
    request: Request
    session: Session
    # Adapters pass a subclass their framework turns into a response by itself.
    make_interaction_error: InteractionErrorFactory = InteractionRequiredError
    # Set when token acquisition needs the user: the middleware answers with it.
    pending: Response | None = None
    _token_cache: msal.SerializableTokenCache | None = None

    @property
    def user(self) -> Mapping[str, Any] | None:
        claims = self.session.get(USER_KEY)
        return MappingProxyType(claims) if isinstance(claims, dict) else None

    def token_cache(self) -> msal.SerializableTokenCache:
        """The user's MSAL cache, decrypted once per request; written back only if it changes."""
        if self._token_cache is None:
            self._token_cache = self.signin.cipher.load_from(self.session)
        return self._token_cache

    def save_token_cache(self) -> None:
        if self._token_cache is not None:
            self.signin.cipher.save_to(self.session, self._token_cache)

    def interaction_required(
        self,
        reason: str,
        scopes: Sequence[str],
        *,
        claims_challenge: str | None = None,
    ) -> InteractionRequiredError:
        """Start a sign-in for ``scopes`` that returns to this page; the error to raise."""
        try:
            return_path = check_return_path(self.request.return_path)
        except UnsafeReturnPathError:
            return_path = "/"
        user = self.user
        hint = None
        if user is not None:
            hint = user.get("login_hint") or user.get("preferred_username")
        response = self.signin.begin(
            self.session,
            scopes=scopes,
            return_path=return_path,
            claims_challenge=claims_challenge,
            login_hint=hint if isinstance(hint, str) else None,
        )
        self.pending = response
        return self.make_interaction_error(reason, response)


def current_context() -> RequestContext | None:
    return _current.get()


def current_user() -> Mapping[str, Any] | None:
    """The signed-in user's ID token claims (read-only), or None when nobody is signed in."""
    ctx = _current.get()
    return ctx.user if ctx is not None else None


def set_current(ctx: RequestContext | None) -> None:
    """Make ``ctx`` current; for drivers that run the app in a copied context."""
    _current.set(ctx)


@contextmanager
def activated(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make ``ctx`` current for the block (the app call), then restore what was there."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
