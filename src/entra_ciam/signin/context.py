"""The sign-in state of the request being handled, for views and ``TokenAcquirer``.

The middlewares put a :class:`RequestContext` in a ContextVar for the duration of the app call;
it follows the request into thread pools (Flask's and Starlette's runners copy the context) and
never leaks to another request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from entra_ciam.errors import EntraCiamError
from entra_ciam.requeststate import REQUEST, bound, signin_state
from entra_ciam.sessions.tokencache import TOKEN_CACHE_KEY
from entra_ciam.signin.errors import InteractionRequiredError, SignInNotConfiguredError
from entra_ciam.signin.messages import Request, Response
from entra_ciam.signin.returnpath import UnsafeReturnPathError, check_return_path
from entra_ciam.signin.tokenmemo import ScopeSet, valid_until

if TYPE_CHECKING:
    import msal

    from entra_ciam.sessions import Session, SessionManager, TokenCacheCipher
    from entra_ciam.signin.msal_app import MsalClients

__all__ = [
    "USER_KEY",
    "RequestContext",
    "SessionEndedError",
    "SignInFlow",
    "current_context",
    "current_user",
]

USER_KEY = "entra_ciam.user"  # the ID token claims, inside the session data

InteractionErrorFactory = Callable[[str, Response], InteractionRequiredError]


class SessionEndedError(EntraCiamError):
    """The session this request loaded is no longer stored (signed out or expired elsewhere)."""


class SignInFlow(Protocol):
    """What a request's context uses of the sign-in flow (``entra_ciam.signin.flow.SignIn``).

    A protocol rather than the class: the flow builds contexts, so it imports this module, and
    this module must not import it back.
    """

    prefix: str
    cipher: TokenCacheCipher
    clients: MsalClients
    sessions: SessionManager

    def begin(
        self,
        request: Request,
        *,
        scopes: Sequence[str],
        return_path: str,
        claims_challenge: str | None = None,
        login_hint: str | None = None,
    ) -> Response: ...

    def is_route(self, path: str) -> bool: ...

    def home(self, request: Request) -> str: ...

    def handle(self, ctx: RequestContext) -> Response: ...


@dataclasses.dataclass(eq=False, slots=True)
class RequestContext:
    """One request seen by the sign-in middleware: its session and what must happen to it."""

    signin: SignInFlow
    # Builds the request's view the first time ``request`` is read (most pages never do).
    describe: Callable[[], Request]
    session: Session
    # Adapters pass a subclass their framework turns into a response by itself.
    make_interaction_error: InteractionErrorFactory = InteractionRequiredError
    # Set when token acquisition needs the user: the middleware answers with it.
    pending: Response | None = None
    _token_cache: msal.SerializableTokenCache | None = None
    # Tokens MSAL gave this request, remembered at the end of it against the blob then stored
    # (None until there is one: most requests get none).
    _fresh_tokens: list[tuple[ScopeSet, str, float]] | None = None
    _opened_id: str = dataclasses.field(init=False)
    _request: Request | None = dataclasses.field(default=None, init=False, repr=False)
    # The claims ``user`` last saw and its read-only view of them.
    _user: tuple[dict[str, Any], Mapping[str, Any]] | None = dataclasses.field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._opened_id = self.session.id

    @property
    def request(self) -> Request:
        """The request being handled, built from the adapter's ``describe`` when first read."""
        if self._request is None:
            self._request = self.describe()
        return self._request

    @property
    def user(self) -> Mapping[str, Any] | None:
        """The signed-in user's claims, read-only; None when nobody is signed in.

        Asked for several times per request (the middleware, ``login_required``,
        ``current_user()``): the view is made once per claims dict. It is read from the session
        every time, so a sign-in or sign-out during the request shows at once.
        """
        claims = self.session.get(USER_KEY)
        seen = self._user
        if seen is not None and seen[0] is claims:  # the usual case: the claims seen before
            return seen[1]
        if not isinstance(claims, dict):
            return None
        seen = self._user = (claims, MappingProxyType(claims))
        return seen[1]

    def token_cache(self) -> msal.SerializableTokenCache:
        """The user's MSAL cache, decrypted once per request; written back only if it changes."""
        if self._token_cache is None:
            self._token_cache = self.signin.cipher.load_from(self.session)
        return self._token_cache

    @contextmanager
    def cached_msal_client(self) -> Iterator[Any]:
        """A pooled MSAL client holding the token cache this request read, closed to the network.

        For the common case of a token MSAL still holds: no lease, no store access. A call that
        would need Entra raises ``NetworkNeeded`` instead; then use ``msal_client``.
        """
        with self._borrowed() as client, self.signin.clients.http_client.offline():
            yield client

    @contextmanager
    def msal_client(self, *, lease_ttl: float, lease_wait: float) -> Iterator[Any]:
        """A pooled MSAL client holding this user's latest token cache, for this session alone.

        The block runs under the session's token-cache lease (one holder at a time, in every
        thread and process sharing the store), with the cache read again from the store, so it
        starts from what a refresh elsewhere just wrote; a cache the block changed is written to
        the store before the lease ends. Raises SessionEndedError when the stored session is
        gone, LeaseTimeoutError after ``lease_wait`` seconds, IdentityProviderUnavailableError
        when no client can be built (discovery fails).
        """
        sessions = self.signin.sessions
        with sessions.lease(self.session, "token-cache", ttl=lease_ttl, wait=lease_wait):
            if not sessions.reload(self.session, TOKEN_CACHE_KEY):
                raise SessionEndedError("the session ended in another request")
            try:
                with self._borrowed() as client:
                    yield client
            finally:
                sessions.write_now(self.session, TOKEN_CACHE_KEY)

    @contextmanager
    def _borrowed(self) -> Iterator[Any]:
        """A pooled client loaded with the session's cache; its changes go back to the session."""
        self.save_token_cache_blob()
        self._token_cache = None  # the pooled client's copy is now the current one
        cipher = self.signin.cipher
        with self.signin.clients.borrowed() as client:
            cipher.load_into(client.token_cache, self.session.get(TOKEN_CACHE_KEY))
            try:
                yield client
            finally:
                cipher.save_to(self.session, client.token_cache)

    def signed_out(self) -> None:
        """The session ended in another request (sign-out): this one goes on without it.

        Its copy is dropped, not written back, and anything this request starts (a sign-in)
        lives in a new session with a new cookie.
        """
        self.signin.sessions.destroy(self.session)
        self._token_cache = None

    def token_cache_state(self) -> tuple[Any, int]:
        """The token cache blob this request holds and its version in the store."""
        return self.signin.sessions.synced(self.session, TOKEN_CACHE_KEY)

    def adopt_token_cache(self, state: tuple[Any, int]) -> None:
        """Take the token cache another request of this session just stored (``token_cache_state``)."""
        self.signin.sessions.adopt(self.session, TOKEN_CACHE_KEY, *state)

    def remembered_token(self, scopes: ScopeSet) -> str | None:
        """The access token for exactly ``scopes`` that an earlier request got, if still good."""
        user_key, blob = self._memo_key()
        if user_key is None or blob is None:
            return None
        for remembered, token, until in self._fresh_tokens or ():
            if remembered == scopes and self.signin.clients.user_tokens.clock() < until:
                return token
        return self.signin.clients.user_tokens.get(self.session.id, blob, user_key, scopes)

    def remember_token(self, scopes: ScopeSet, result: Mapping[str, Any]) -> None:
        """Keep a token MSAL returned for later requests of this session (see tokenmemo)."""
        memo = self.signin.clients.user_tokens
        until = valid_until(result, memo.clock(), memo.margin)
        token = result.get("access_token")
        if until is not None and isinstance(token, str):
            if self._fresh_tokens is None:
                self._fresh_tokens = []
            self._fresh_tokens.append((scopes, token, until))

    def save_token_cache_blob(self) -> None:
        """Write a cache loaded with ``token_cache()`` back to the session if it changed."""
        if self._token_cache is not None:
            self.signin.cipher.save_to(self.session, self._token_cache)

    def save_token_cache(self) -> None:
        """At the end of the request: store the cache and update the memo of users' tokens.

        A session whose id changed (sign-out, sign-in) loses what the memo held for it.
        """
        if self._token_cache is not None:  # most requests never read it: no call for them
            self.save_token_cache_blob()
        # The memo is looked up only when there is something to tell it (most requests: nothing).
        if self.session.id != self._opened_id:
            self.signin.clients.user_tokens.forget(self._opened_id)
        if self._fresh_tokens:
            user_key, blob = self._memo_key()
            if user_key is not None and blob is not None:
                self.signin.clients.user_tokens.put(
                    self.session.id, blob, user_key, self._fresh_tokens
                )
            self._fresh_tokens = None

    def _memo_key(self) -> tuple[str | None, str | None]:
        """The signed-in user's id and the stored cache blob, the memo's view of the session."""
        claims = self.session.get(USER_KEY)
        blob = self.session.get(TOKEN_CACHE_KEY)
        if not isinstance(claims, dict) or not isinstance(blob, str) or not blob:
            return None, None
        user_key = claims.get("oid") or claims.get("sub")
        return (user_key, blob) if isinstance(user_key, str) and user_key else (None, None)

    def return_path(self) -> str:
        """This request's page, to come back to after sign-in; the app's home under its mount
        when the page cannot be returned to (an address too long or too odd to pass
        ``check_return_path``). Never the host's ``/``: a mounted app's users belong under
        its mount."""
        request = self.request
        try:
            return check_return_path(request.return_path)
        except UnsafeReturnPathError:
            return self.signin.home(request)

    def interaction_required(
        self,
        reason: str,
        scopes: Sequence[str],
        *,
        claims_challenge: str | None = None,
    ) -> InteractionRequiredError:
        """Start a sign-in for ``scopes`` that returns to this page; the error to raise."""
        return_path = self.return_path()
        user = self.user
        hint = None
        if user is not None:
            hint = user.get("login_hint") or user.get("preferred_username")
        response = self.signin.begin(
            self.request,
            scopes=scopes,
            return_path=return_path,
            claims_challenge=claims_challenge,
            login_hint=hint if isinstance(hint, str) else None,
        )
        self.pending = response
        return self.make_interaction_error(reason, response)


def current_context() -> RequestContext | None:
    return REQUEST.get().signin


def current_user() -> Mapping[str, Any] | None:
    """The signed-in user's ID token claims (read-only), or None when nobody is signed in.

    Like ``current_claims()`` outside the bearer middleware, it raises when no sign-in middleware
    handled the request (``SignInNotConfiguredError``): an app that forgot the middleware must
    not quietly treat everyone as signed out.
    """
    ctx = REQUEST.get().signin
    if ctx is None:
        raise SignInNotConfiguredError(
            "current_user() needs SignInMiddleware around the app (no sign-in middleware "
            "handled this request)"
        )
    return ctx.user


def activated(ctx: RequestContext) -> bound:
    """Make ``ctx`` current for the block, then restore what was there (without a middleware)."""
    return bound(signin_state(REQUEST.get().integration, ctx))
