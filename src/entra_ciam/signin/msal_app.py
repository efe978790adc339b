"""MSAL confidential clients for one app registration, sharing discovery and HTTP.

MSAL binds a token cache to a client when it is built, and building one costs a few hundred
microseconds, so user requests borrow a client from a small pool instead: each pooled client owns
a ``SerializableTokenCache`` that is loaded with the user's cache when borrowed and emptied when
given back, and a client is used by one thread at a time (MSAL's clients are not meant to have
their cache swapped under a running call). Every client shares one HTTP cache (MSAL keeps
discovery answers there for a day) and one httpx client with our timeouts and CA bundle, behind
one gate that keeps every client away from the token endpoint while Entra asked us to wait
(``throttle``). Token refreshes in flight are shared here too (``user_flights``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import httpx
import msal

from entra_ciam.config import EntraConfig
from entra_ciam.errors import EntraCiamError
from entra_ciam.http import FetchError, MsalHttpClient, describe_transport_error
from entra_ciam.sessions.base import SessionStore
from entra_ciam.signin import msal_logging
from entra_ciam.signin.singleflight import Flights
from entra_ciam.signin.throttle import GatedHttpClient, RetryAfterGate
from entra_ciam.signin.tokenmemo import UserTokenMemo

__all__ = ["POOL_SIZE", "IdentityProviderUnavailableError", "MsalClients"]

POOL_SIZE = 32  # idle clients kept for user requests; more are built under load, then dropped

# MSAL logs authorization codes and PKCE verifiers at DEBUG: mask them before any handler runs.
msal_logging.install()


# What building a client raises when discovery fails: transport errors, MSAL's HTTP errors,
# ValueError for a bad document or issuer, RuntimeError for its last-resort check.
_DISCOVERY_ERRORS = (
    httpx.HTTPError,
    FetchError,
    msal.exceptions.MsalError,
    ValueError,
    KeyError,
    RuntimeError,
)


class IdentityProviderUnavailableError(EntraCiamError):
    """Entra (its discovery document or token endpoint) cannot be reached or answered badly.

    The message is for logs and pages: it names the endpoint and the reason, never a secret.
    """


class _SharedCache(MutableMapping[Any, Any]):
    """A dict with one lock, so clients built in different threads can share MSAL's HTTP cache."""

    def __init__(self) -> None:
        self._data: dict[Any, Any] = {}
        self._lock = threading.RLock()

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            del self._data[key]

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class MsalClients:
    """Makes ``msal.ConfidentialClientApplication`` objects for one web app registration."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        http_client: MsalHttpClient | None = None,
        purpose: str = "Signing users in",
        shared_store: SessionStore | None = None,
    ) -> None:
        config.require("client_id", "client_secret", purpose=purpose)
        self.config = config
        # Entra's "wait" is kept in ``shared_store`` too, for every process sharing it.
        self.http_client = GatedHttpClient(
            http_client if http_client is not None else MsalHttpClient(config.verify),
            RetryAfterGate(store=shared_store),
        )
        self._http_cache = _SharedCache()
        self._app_lock = threading.Lock()
        self._app_client: Any = None
        self._pool: list[Any] = []
        self._pool_lock = threading.Lock()
        # Users' access tokens, so warm requests skip MSAL (see tokenmemo); per process.
        self.user_tokens = UserTokenMemo()
        # One refresh per session and scope set at a time in this process (see TokenAcquirer).
        self.user_flights: Flights[Any] = Flights()

    def build(self, token_cache: msal.TokenCache | None = None) -> Any:
        """A client over ``token_cache`` (a fresh empty one if None).

        Raises IdentityProviderUnavailableError when discovery fails or its issuer does not match
        the authority (MSAL checks that for ``oidc_authority``).
        """
        try:
            return msal.ConfidentialClientApplication(
                self.config.client_id,
                client_credential=self.config.client_secret,
                oidc_authority=self.config.oidc_authority,
                token_cache=token_cache if token_cache is not None else msal.TokenCache(),
                http_client=self.http_client,
                http_cache=self._http_cache,
            )
        except _DISCOVERY_ERRORS as exc:
            raise IdentityProviderUnavailableError(
                f"cannot use the authority {self.config.oidc_authority}: {_reason(exc)}"
            ) from exc

    @contextmanager
    def borrowed(self) -> Iterator[Any]:
        """A client whose ``token_cache`` (a SerializableTokenCache) is the caller's for the block.

        The caller loads the user's cache into it; it is emptied when the block ends, so nothing
        of one user stays in a client another request gets. Raises
        IdentityProviderUnavailableError when a new client is needed and discovery fails.
        """
        with self._pool_lock:
            client = self._pool.pop() if self._pool else None
        if client is None:
            client = self.build(msal.SerializableTokenCache())
        try:
            yield client
        finally:
            client.token_cache.deserialize(None)
            with self._pool_lock:
                if len(self._pool) < POOL_SIZE:
                    self._pool.append(client)

    def app_client(self) -> Any:
        """The one client for app-only tokens; MSAL caches them in its own in-memory cache."""
        with self._app_lock:
            if self._app_client is None:
                self._app_client = self.build(msal.TokenCache())
            return self._app_client

    def metadata(self) -> dict[str, Any]:
        """The tenant's discovery document, from the cache MSAL filled when building a client."""
        client = self.build()
        try:
            response = client.http_client.get(self.config.metadata_url)
        except (httpx.HTTPError, FetchError) as exc:
            raise IdentityProviderUnavailableError(
                f"cannot fetch {self.config.metadata_url}: {_reason(exc)}"
            ) from exc
        try:
            document = json.loads(response.text)
        except ValueError as exc:
            raise IdentityProviderUnavailableError(
                f"{self.config.metadata_url} did not return JSON"
            ) from exc
        if response.status_code != 200 or not isinstance(document, dict):
            raise IdentityProviderUnavailableError(
                f"{self.config.metadata_url} answered HTTP {response.status_code}"
            )
        return document

    def end_session_endpoint(self) -> str | None:
        value = self.metadata().get("end_session_endpoint")
        return value if isinstance(value, str) and value else None

    def close(self) -> None:
        self.http_client.close()


def _reason(exc: BaseException) -> str:
    """Why Entra could not be used, for the log: a TLS verification failure names the CA bundle
    setting that fixes it. Never shown to a visitor (the sign-in pages say only "unavailable")."""
    if isinstance(exc, FetchError):
        return f"{exc.reason}; fix: {exc.remedy}"
    if isinstance(exc, httpx.HTTPError):
        reason, remedy = describe_transport_error(exc)
        return f"{reason}; fix: {remedy}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
