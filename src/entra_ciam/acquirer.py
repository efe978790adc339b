"""``TokenAcquirer``: access tokens for the signed-in user, for the app, and on behalf of a caller.

User tokens come silently from the user's own MSAL cache (refreshed as needed). When only the
user can help (consent, sign-in, a claims challenge) the acquirer starts a sign-in for the extra
scopes and raises :class:`InteractionRequiredError`; the sign-in middleware answers with that
redirect whatever the view's framework does with the exception, and the user comes back to the
page they asked for. Each call has an ``_async`` twin that runs the same code in a worker thread,
because MSAL is synchronous.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import msal
from cachetools import TLRUCache

from entra_ciam import telemetry as _telemetry
from entra_ciam.config import EntraConfig
from entra_ciam.errors import ConfigError
from entra_ciam.http import FetchError, MsalHttpClient
from entra_ciam.signin.context import RequestContext, current_context
from entra_ciam.signin.errors import InteractionRequiredError, TokenAcquisitionError
from entra_ciam.signin.flow import normalize_scopes
from entra_ciam.signin.msal_app import IdentityProviderUnavailableError, MsalClients

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

Scopes = str | Iterable[str]


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
    """

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        http_client: MsalHttpClient | None = None,
        clients: MsalClients | None = None,
    ) -> None:
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
        five minutes left (``entra_ciam.signin.tokenmemo``); anything else goes through MSAL.
        """
        ctx, wanted, token = self._remembered(scopes, claims_challenge)
        if token is not None:
            return token
        return self._user_token_from_msal(ctx, wanted, claims_challenge)

    @_telemetry.acquisition("user")
    async def acquire_token_for_user_async(
        self, scopes: Scopes, *, claims_challenge: str | None = None
    ) -> str:
        # The memo is a dictionary lookup: only MSAL's path leaves the event loop.
        ctx, wanted, token = self._remembered(scopes, claims_challenge)
        if token is not None:
            return token
        return await asyncio.to_thread(self._user_token_from_msal, ctx, wanted, claims_challenge)

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

    def _user_token_from_msal(
        self, ctx: RequestContext, wanted: list[str], claims_challenge: str | None
    ) -> str:
        user = ctx.user
        if user is None:
            raise ctx.interaction_required("nobody is signed in", wanted)
        try:
            with ctx.msal_client() as client:
                account = _account_for(client.get_accounts(), user)
                if account is None:
                    raise ctx.interaction_required(
                        "the user's token cache holds no account", wanted
                    )
                try:
                    result = client.acquire_token_silent_with_error(
                        wanted, account, claims_challenge=claims_challenge
                    )
                except _TRANSPORT_ERRORS as exc:
                    raise _unreachable(exc) from exc
        except IdentityProviderUnavailableError as exc:
            raise TokenAcquisitionError(str(exc), status_code=503) from exc
        _telemetry.token_source(result)
        if result is None:
            raise self._interaction(ctx, "no token for these scopes yet", wanted, claims_challenge)
        if "access_token" in result:
            if claims_challenge is None:
                ctx.remember_token(frozenset(wanted), result)
            return str(result["access_token"])
        error, _description = _describe(result)
        challenge = result.get("claims") or claims_challenge
        if error in INTERACTION_ERRORS or result.get("claims"):
            raise self._interaction(ctx, f"Entra answered {error}", wanted, challenge)
        raise _failure(result, "a token for the user")

    @staticmethod
    def _interaction(
        ctx: RequestContext, reason: str, scopes: list[str], claims_challenge: str | None
    ) -> InteractionRequiredError:
        return ctx.interaction_required(reason, scopes, claims_challenge=claims_challenge)

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
