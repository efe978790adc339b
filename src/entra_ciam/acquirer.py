"""``TokenAcquirer``: access tokens for the signed-in user, for the app, and on behalf of a caller.

User tokens come silently from the user's own MSAL cache (refreshed as needed). When only the
user can help (consent, sign-in, a claims challenge) the acquirer starts a sign-in for the extra
scopes and raises :class:`InteractionRequiredError`; the sign-in middleware answers with that
redirect whatever the view's framework does with the exception, and the user comes back to the
page they asked for. Each call has an ``_async`` twin that runs the same code in a worker thread,
because MSAL is synchronous.

One user's requests often come in bursts (a page with several panels, several tabs), all finding
the same expired token. Only one of them refreshes it: requests of one session wanting the same
scopes join one flight in this process (threads and asyncio tasks alike), and the flight's leader
holds the session's lease in the store while it reads the token cache, calls Entra if it still
must, and stores the new cache; another process waiting for the lease then finds the new token in
the cache. So a burst costs Entra one redemption, and no request writes an older cache back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import msal
from cachetools import TLRUCache

from entra_ciam import telemetry as _telemetry
from entra_ciam.config import EntraConfig
from entra_ciam.errors import ConfigError
from entra_ciam.http import FetchError, MsalHttpClient
from entra_ciam.sessions.manager import LeaseTimeoutError
from entra_ciam.signin.context import RequestContext, SessionEndedError, current_context
from entra_ciam.signin.errors import InteractionRequiredError, TokenAcquisitionError
from entra_ciam.signin.flow import normalize_scopes
from entra_ciam.signin.msal_app import IdentityProviderUnavailableError, MsalClients
from entra_ciam.signin.singleflight import Flights
from entra_ciam.signin.throttle import NetworkNeeded, TokenEndpointThrottled

__all__ = ["InteractionRequiredError", "TokenAcquirer", "TokenAcquisitionError"]

# Errors after which only the user can help (RFC 6749, OIDC Core and Entra's own).
INTERACTION_ERRORS = frozenset(
    {"interaction_required", "consent_required", "login_required", "invalid_grant"}
)
_UNAVAILABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
# Entra unreachable, or answering with something that is not an OAuth answer (an HTML error page).
_TRANSPORT_ERRORS = (httpx.HTTPError, FetchError, msal.exceptions.MsalError, json.JSONDecodeError)
# A cached on-behalf-of token is not handed out in its last minutes.
OBO_EXPIRY_MARGIN = 300.0
OBO_CACHE_SIZE = 10_000
# Seconds a refresh may hold a session's token-cache lease: several token calls within our HTTP
# timeouts. A lease its holder never released (a killed process) is taken over after this.
LEASE_TTL = 20.0

Scopes = str | Iterable[str]


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    """A TokenAcquisitionError to raise in every request of a flight (each gets its own)."""

    description: str
    code: str | None
    status: int
    retry_after: float | None = None

    @classmethod
    def of(cls, exc: TokenAcquisitionError) -> _Failure:
        return cls(exc.description, exc.error, exc.status_code, exc.retry_after)

    def error(self) -> TokenAcquisitionError:
        return TokenAcquisitionError(
            self.description,
            error=self.code,
            status_code=self.status,
            retry_after=self.retry_after,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    """What one refresh gives every request of its flight: a token, a need for the user, or a
    failure. ``cache`` is the token cache (blob, version) the token is stored in.
    """

    token: str | None = dataclasses.field(default=None, repr=False)
    result: Mapping[str, Any] | None = dataclasses.field(default=None, repr=False)
    cache: tuple[Any, int] | None = dataclasses.field(default=None, repr=False)
    interaction: str | None = None
    challenge: str | None = None
    failure: _Failure | None = None
    ended: bool = False  # the stored session is gone: signed out in another request

    @classmethod
    def of_token(cls, ctx: RequestContext, result: Mapping[str, Any]) -> _Outcome:
        """MSAL's answer with a token, and the token cache (blob, version) it is in."""
        return cls(
            token=str(result["access_token"]),
            result={k: result[k] for k in _SHARED_RESULT if k in result},
            cache=ctx.token_cache_state(),
        )


# What of MSAL's answer the other requests of a flight need (the memo, telemetry); never the
# refresh or ID token.
_SHARED_RESULT = ("access_token", "expires_in", "refresh_in", "refresh_on", "token_source")


def _account_for(accounts: list[dict[str, Any]], user: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cache account of the signed-in user; never another one."""
    key = user.get("oid") or user.get("sub")
    for account in accounts:
        if account.get("local_account_id") == key:
            return account
    return None


def _describe(result: Mapping[str, Any]) -> tuple[str, str]:
    error = str(result.get("error", "unknown_error"))[:64]
    lines = str(result.get("error_description") or "").splitlines()
    return error, (lines[0][:300] if lines else "")


def _failure(result: Mapping[str, Any], what: str) -> TokenAcquisitionError:
    error, description = _describe(result)
    status = 503 if error in _UNAVAILABLE_ERRORS else 502
    return TokenAcquisitionError(
        f"Microsoft Entra refused {what} ({error}): {description}", error=error, status_code=status
    )


def _unreachable(exc: BaseException) -> TokenAcquisitionError:
    """503: Entra cannot be reached, or asked us to wait (with the seconds, for Retry-After)."""
    if isinstance(exc, TokenEndpointThrottled):
        return TokenAcquisitionError(
            f"Microsoft Entra asked to wait {exc.retry_after:.0f} s before the next token request",
            error="temporarily_unavailable",
            status_code=503,
            retry_after=exc.retry_after,
        )
    return TokenAcquisitionError(
        f"Microsoft Entra cannot be reached ({type(exc).__name__})",
        error="temporarily_unavailable",
        status_code=503,
    )


def _request_context() -> RequestContext:
    ctx = current_context()
    if ctx is None:
        raise RuntimeError(
            "acquire_token_for_user() must run inside a request handled by SignInMiddleware"
        )
    return ctx


class TokenAcquirer:
    """Gets access tokens with MSAL for the web app (or API) that ``config`` registers.

    ``acquire_token_for_user`` works inside requests handled by ``SignInMiddleware`` and uses
    that middleware's settings; the app and on-behalf-of calls need ``config`` with
    ``client_id`` and ``client_secret`` (or run inside such a request).

    ``retry_after_limit``: when Entra answers a token request with 429 or 503 and
    ``Retry-After``, wait that long and try once more if it is at most this many seconds;
    otherwise (and by default, 0) raise TokenAcquisitionError 503 at once, with ``retry_after``.
    """

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        http_client: MsalHttpClient | None = None,
        clients: MsalClients | None = None,
        retry_after_limit: float = 0.0,
    ) -> None:
        if not 0 <= retry_after_limit <= 300:
            raise ConfigError(
                f"retry_after_limit must be between 0 and 300 seconds, got {retry_after_limit!r}"
            )
        self.retry_after_limit = float(retry_after_limit)
        # How long a request waits for the refresh another request leads: its lease wait, its
        # own lease, and a moment.
        self._follow_timeout = 2 * (LEASE_TTL + self.retry_after_limit) + 5.0
        self._config = config
        self._http_client = http_client
        self._clients = clients
        self._lock = threading.Lock()
        self._obo: TLRUCache[str, tuple[str, float]] = TLRUCache(
            maxsize=OBO_CACHE_SIZE,
            ttu=lambda _key, value, _now: value[1] - OBO_EXPIRY_MARGIN,
            timer=time.time,
        )

    # -- for the signed-in user -------------------------------------------------------------------

    @_telemetry.acquisition("user")
    def acquire_token_for_user(self, scopes: Scopes, *, claims_challenge: str | None = None) -> str:
        """An access token for the signed-in user, or InteractionRequiredError (see the module).

        A token an earlier request of the same session got for the same scopes is served from an
        in-process memo while the session's token cache is unchanged and the token has more than
        five minutes left (``entra_ciam.signin.tokenmemo``); anything else goes through MSAL, one
        request per session and scope set at a time (see ``_refresh``).
        """
        ctx, wanted, token = self._remembered(scopes, claims_challenge)
        if token is not None:
            return token
        flight, lead = self._flight(ctx, wanted, claims_challenge)
        if lead is not None:
            lead()
        try:
            outcome = flight.result(timeout=self._follow_timeout)
        except concurrent.futures.TimeoutError:
            outcome = self._too_long()
        return self._deliver(ctx, outcome, wanted, claims_challenge)

    @_telemetry.acquisition("user")
    async def acquire_token_for_user_async(
        self, scopes: Scopes, *, claims_challenge: str | None = None
    ) -> str:
        # The memo is a dictionary lookup and a follower awaits the flight: only the leader's
        # MSAL call leaves the event loop.
        ctx, wanted, token = self._remembered(scopes, claims_challenge)
        if token is not None:
            return token
        flight, lead = self._flight(ctx, wanted, claims_challenge)
        if lead is not None:
            await asyncio.to_thread(lead)
        try:
            outcome = await asyncio.wait_for(asyncio.wrap_future(flight), self._follow_timeout)
        except TimeoutError:
            outcome = self._too_long()
        return self._deliver(ctx, outcome, wanted, claims_challenge)

    @staticmethod
    def _remembered(
        scopes: Scopes, claims_challenge: str | None
    ) -> tuple[RequestContext, list[str], str | None]:
        """The request, the normalized scopes, and the memo's token (never for a challenge)."""
        ctx = _request_context()
        wanted = normalize_scopes(scopes)
        token = None if claims_challenge is not None else ctx.remembered_token(frozenset(wanted))
        _telemetry.memo_answered(token)
        return ctx, wanted, token

    def _flight(
        self, ctx: RequestContext, wanted: list[str], claims_challenge: str | None
    ) -> tuple[concurrent.futures.Future[_Outcome], Callable[[], None] | None]:
        """The refresh in flight for this session and scope set (and challenge), and, for the
        request that starts it, the call that runs it.
        """
        key = (
            ctx.signin.sessions.store_key(ctx.session.id),
            frozenset(wanted),
            claims_challenge,
        )
        flights: Flights[_Outcome] = ctx.signin.clients.user_flights
        flight, leads = flights.join(key)
        if not leads:
            return flight, None
        return flight, functools.partial(
            flights.lead,
            key,
            flight,
            functools.partial(self._refresh, ctx, wanted, claims_challenge),
        )

    def _refresh(
        self, ctx: RequestContext, wanted: list[str], claims_challenge: str | None
    ) -> _Outcome:
        """What MSAL gives for the user's token cache, for every request in the flight.

        First from the cache this request read, without Entra (most misses of the memo: another
        process, or a memo that forgot). When MSAL needs Entra, again under the session's
        token-cache lease with the cache as stored now: when another process (or an earlier
        flight) already refreshed, MSAL finds its token and Entra is not called; otherwise exactly
        this call redeems the refresh token, and the new cache is stored before the lease ends.
        Entra asking to slow down is waited out (up to ``retry_after_limit`` seconds) or answered
        with a 503 at once, never retried per request.
        """
        user = ctx.user
        if user is None:
            return _Outcome(interaction="nobody is signed in")
        if claims_challenge is None:  # a challenge always goes to Entra
            cached = self._cached(ctx, user, wanted)
            if cached is not None:
                return cached
        lease_ttl = LEASE_TTL + self.retry_after_limit
        try:
            with ctx.msal_client(lease_ttl=lease_ttl, lease_wait=lease_ttl + 1.0) as client:
                account = _account_for(client.get_accounts(), user)
                if account is None:
                    return _Outcome(interaction="the user's token cache holds no account")
                result = self._silent(client, wanted, account, claims_challenge)
        except _TRANSPORT_ERRORS as exc:
            return _Outcome(failure=_Failure.of(_unreachable(exc)))
        except IdentityProviderUnavailableError as exc:
            return _Outcome(failure=_Failure(str(exc), None, 503))
        except LeaseTimeoutError as exc:
            return _Outcome(failure=_Failure(f"the token refresh is busy: {exc}", None, 503, 1.0))
        except SessionEndedError as exc:
            return _Outcome(interaction=str(exc), ended=True)
        if result is None:
            return _Outcome(interaction="no token for these scopes yet")
        if "access_token" in result:
            return _Outcome.of_token(ctx, result)
        error, _description = _describe(result)
        if error in INTERACTION_ERRORS or result.get("claims"):
            challenge = result.get("claims")
            return _Outcome(
                interaction=f"Entra answered {error}",
                challenge=challenge if isinstance(challenge, str) else None,
            )
        return _Outcome(failure=_Failure.of(_failure(result, "a token for the user")))

    @staticmethod
    def _cached(ctx: RequestContext, user: Mapping[str, Any], wanted: list[str]) -> _Outcome | None:
        """The token MSAL holds in the cache this request read, or None if it needs Entra."""
        try:
            with ctx.cached_msal_client() as client:
                account = _account_for(client.get_accounts(), user)
                if account is None:
                    return None
                result = client.acquire_token_silent_with_error(wanted, account)
        except (NetworkNeeded, IdentityProviderUnavailableError, *_TRANSPORT_ERRORS):
            return None  # the leased attempt says what went wrong, if anything still does
        if not result or "access_token" not in result:
            return None
        return _Outcome.of_token(ctx, result)

    def _silent(
        self, client: Any, wanted: list[str], account: dict[str, Any], claims_challenge: str | None
    ) -> dict[str, Any] | None:
        """MSAL's silent call; after a throttled answer, once more if the wait is allowed."""
        started = time.monotonic()
        for attempt in range(2):
            try:
                result: dict[str, Any] | None = client.acquire_token_silent_with_error(
                    wanted, account, claims_challenge=claims_challenge
                )
                return result
            except TokenEndpointThrottled as exc:
                waited = time.monotonic() - started
                if attempt or exc.retry_after + waited > self.retry_after_limit:
                    raise
                time.sleep(exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _too_long(self) -> _Outcome:
        reason = f"the user's token refresh took over {self._follow_timeout:g} s"
        return _Outcome(failure=_Failure(reason, "temporarily_unavailable", 503, 1.0))

    @staticmethod
    def _deliver(
        ctx: RequestContext, outcome: _Outcome, wanted: list[str], claims_challenge: str | None
    ) -> str:
        """This request's share of the flight: the token, its own sign-in redirect, or an error."""
        if outcome.token is not None:
            _telemetry.token_source(outcome.result)
            if outcome.cache is not None:
                ctx.adopt_token_cache(outcome.cache)
            if outcome.result is not None and claims_challenge is None:
                ctx.remember_token(frozenset(wanted), outcome.result)
            return outcome.token
        if outcome.interaction is not None:
            if outcome.ended:
                ctx.signed_out()  # the sign-in starts from a new session, not the ended one
            raise ctx.interaction_required(
                outcome.interaction, wanted, claims_challenge=outcome.challenge or claims_challenge
            )
        assert outcome.failure is not None
        raise outcome.failure.error()

    # -- for the app itself -----------------------------------------------------------------------

    @_telemetry.acquisition("app")
    def acquire_token_for_app(self, scopes: Scopes) -> str:
        """An app-only token (client credentials), e.g. for ``api://<api-id>/.default``.

        MSAL keeps app tokens in the app client's cache and reuses them until they near expiry.
        """
        wanted = normalize_scopes(scopes)
        try:
            client = self._msal_clients().app_client()
            result = client.acquire_token_for_client(wanted)
            _telemetry.token_source(result)
        except IdentityProviderUnavailableError as exc:
            raise TokenAcquisitionError(str(exc), status_code=503) from exc
        except _TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        if "access_token" not in result:
            raise _failure(result, "an app token")
        return str(result["access_token"])

    async def acquire_token_for_app_async(self, scopes: Scopes) -> str:
        return await asyncio.to_thread(self.acquire_token_for_app, scopes)

    # -- for an API calling another API -----------------------------------------------------------

    @_telemetry.acquisition("obo")
    def acquire_token_on_behalf_of(self, incoming_token: str, scopes: Scopes) -> str:
        """A token for a downstream API on behalf of the caller of this API (OBO flow).

        Results are cached per incoming token and scopes (keyed on a hash, never the token) until
        shortly before they expire. When the caller must sign in again or consent, this raises
        TokenAcquisitionError with ``status_code`` 401 and the claims challenge, if any.
        """
        if not isinstance(incoming_token, str) or incoming_token.count(".") != 2:
            raise ValueError("incoming_token must be the caller's access token (a JWT)")
        wanted = normalize_scopes(scopes)
        digest = hashlib.sha256(incoming_token.encode()).hexdigest()
        key = f"{digest} {' '.join(sorted(wanted))}"
        with self._lock:
            hit = self._obo.get(key)
        if hit is not None:
            _telemetry.memo_answered(hit[0])
            return hit[0]
        try:
            # A throwaway cache: nothing of one caller stays in a client shared with others.
            client = self._msal_clients().build(msal.TokenCache())
            result = client.acquire_token_on_behalf_of(incoming_token, wanted)
            _telemetry.token_source(result)
        except IdentityProviderUnavailableError as exc:
            raise TokenAcquisitionError(str(exc), status_code=503) from exc
        except _TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        if "access_token" not in result:
            error, description = _describe(result)
            if error in INTERACTION_ERRORS:
                raise TokenAcquisitionError(
                    f"the caller must sign in again or consent ({error}): {description}",
                    error=error,
                    status_code=401,
                    claims=result.get("claims"),
                )
            raise _failure(result, "an on-behalf-of token")
        token = str(result["access_token"])
        try:
            lifetime = float(result.get("expires_in", 0))
        except (TypeError, ValueError):
            lifetime = 0.0
        if lifetime > OBO_EXPIRY_MARGIN:
            with self._lock:
                self._obo[key] = (token, time.time() + lifetime)
        return token

    async def acquire_token_on_behalf_of_async(self, incoming_token: str, scopes: Scopes) -> str:
        return await asyncio.to_thread(self.acquire_token_on_behalf_of, incoming_token, scopes)

    # -- helpers ----------------------------------------------------------------------------------

    def _msal_clients(self) -> MsalClients:
        with self._lock:
            if self._clients is None:
                config = self._config
                if config is None:
                    ctx = current_context()
                    if ctx is None:
                        raise ConfigError(
                            "TokenAcquirer needs an EntraConfig (client_id and client_secret) "
                            "for app and on-behalf-of tokens: TokenAcquirer(EntraConfig.from_env())"
                        )
                    return ctx.signin.clients
                self._clients = MsalClients(
                    config, http_client=self._http_client, purpose="Acquiring tokens"
                )
            return self._clients
