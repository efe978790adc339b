"""OpenID Connect discovery and signing keys: one cache, one set of rules, two thin I/O drivers.

:class:`MetadataCache` holds no sockets: it decides what must be fetched and absorbs what was
fetched. :class:`MetadataClient` (threads, ``httpx.Client``) and :class:`AsyncMetadataClient`
(asyncio, ``httpx.AsyncClient``) only move bytes, so sync and async follow the same rules:

- a cold cache is filled by ONE fetch however many requests wait for it (single flight);
- a ``kid`` that is not known triggers at most one JWKS refresh per ``unknown_kid_interval``;
- after ``refresh_interval`` keys keep serving while a refresh runs in the background;
- a failed refresh keeps the last known-good metadata and keys;
- only when nothing was ever fetched does a lookup fail with MetadataUnavailableError (503).
"""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from entra_ciam import telemetry as _telemetry
from entra_ciam.errors import InvalidTokenError, MetadataUnavailableError
from entra_ciam.jose import DEFAULT_ALGORITHMS
from entra_ciam.jwks import MAX_JWKS_BYTES, parse_jwks
from entra_ciam.urls import require_secure_url

if TYPE_CHECKING:
    import asyncio

    import httpx

    from entra_ciam.http import VerifyTypes

__all__ = [
    "AsyncMetadataClient",
    "MetadataCache",
    "MetadataClient",
    "ProviderMetadata",
    "Refresh",
    "parse_metadata",
]

logger = logging.getLogger(__name__)

MAX_METADATA_BYTES: Final = 64 * 1024
REFRESH_INTERVAL: Final = 12 * 3600.0
UNKNOWN_KID_INTERVAL: Final = 300.0
RETRY_INTERVAL: Final = 10.0
PROBE_TIMEOUT: Final = 2.0  # readiness probes answer within a few seconds

# What an operator should check when a fetched document is not what it should be.
_BAD_DOCUMENT: Final = {
    "metadata": "check that the authority (or metadata_url) names the Entra tenant: this URL must "
    "serve its OpenID Connect discovery document",
    "keys": "the discovery document's jwks_uri must serve the tenant's signing keys (a JWKS with "
    "RSA keys)",
}
# What a client is told: that the identity provider is unavailable, and nothing of why (the URL
# may be internal; the error names hosts and software). The reason goes to the log.
UNAVAILABLE: Final = "The identity provider is temporarily unavailable; try again later"

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What discovery tells the validator: the issuer to expect and where its keys are."""

    issuer: str
    jwks_uri: str
    document: Mapping[str, Any]

    @property
    def tenant_id(self) -> str | None:
        """The tenant GUID in the issuer path (``https://<tid>.ciamlogin.com/<tid>/v2.0``)."""
        for segment in urlsplit(self.issuer).path.split("/"):
            if _GUID_RE.match(segment):
                return segment.lower()
        return None


def parse_metadata(body: bytes | str, *, max_bytes: int = MAX_METADATA_BYTES) -> ProviderMetadata:
    """Check a discovery document; ValueError says what is wrong with it."""
    if len(body) > max_bytes:
        raise ValueError(f"the discovery document is larger than {max_bytes} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the discovery document is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the discovery document is not a JSON object")
    issuer = doc.get("issuer")
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(issuer, str) or not issuer:
        raise ValueError('the discovery document has no "issuer"')
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise ValueError('the discovery document has no "jwks_uri"')
    if "{" in issuer:
        raise ValueError(
            f"the discovered issuer {issuer!r} is a multi-tenant template; use a tenant's authority"
        )
    require_secure_url(issuer, "the discovered issuer")
    require_secure_url(jwks_uri, "the discovered jwks_uri")
    return ProviderMetadata(issuer, jwks_uri, MappingProxyType(doc))


def _unknown_key() -> InvalidTokenError:
    """A token signed by a key the issuer does not publish. The text names no kid: it is also
    the ``token_refused`` event's detail, and a kid is whatever the caller wrote in the header
    (docs/security.md: never logged)."""
    return InvalidTokenError("the token signing key is not one of the issuer's keys")


class Refresh:
    """One refresh in progress: metadata (when needed) then keys. Drivers loop over it::

    while (url := refresh.next_url()) is not None:
        try:
            body = fetch(url)
        except FetchError as exc:
            refresh.fail(exc.reason, remedy=exc.remedy)
        else:
            refresh.absorb(body)
    refresh.finish()
    """

    __slots__ = ("_cache", "_steps", "background")

    def __init__(self, cache: MetadataCache, *, metadata: bool, background: bool = False) -> None:
        self._cache = cache
        self._steps = ["metadata", "keys"] if metadata else ["keys"]
        self.background = background

    def next_url(self) -> str | None:
        if not self._steps:
            return None
        if self._steps[0] == "metadata":
            return self._cache.metadata_url
        metadata = self._cache.metadata
        return metadata.jwks_uri if metadata is not None else None

    @property
    def max_bytes(self) -> int:
        step = self._steps[0] if self._steps else "keys"
        return self._cache.max_metadata_bytes if step == "metadata" else self._cache.max_jwks_bytes

    def absorb(self, body: bytes) -> None:
        url = self.next_url() or ""
        step = self._steps.pop(0)
        try:
            if step == "metadata":
                self._cache._store_metadata(parse_metadata(body, max_bytes=self.max_bytes))
            else:
                keys = parse_jwks(body, self._cache.algorithms, max_bytes=self.max_bytes)
                self._cache._store_keys(keys)
        except ValueError as exc:
            self._cache._store_failure(
                step, url, str(exc), _BAD_DOCUMENT[step], background=self.background
            )
            self._steps.clear()

    def fail(self, reason: str, *, remedy: str = "") -> None:
        """Give up on this refresh (the current step failed for ``reason``); the cache keeps
        what it had. ``remedy`` tells an operator what to do; both go to the log only."""
        step = self._steps[0] if self._steps else "keys"
        url = self.next_url() or ""
        self._steps.clear()
        self._cache._store_failure(step, url, reason, remedy, background=self.background)

    def finish(self) -> None:
        """Always called by the driver, even after an unexpected error."""
        if self._steps:
            self.fail("the refresh was interrupted (the request was cancelled)")
        if self.background:
            self._cache._background_done()


class MetadataCache:
    """The sans-IO state: discovery document, keys by ``kid``, and when to fetch them again."""

    def __init__(
        self,
        metadata_url: str,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        refresh_interval: float = REFRESH_INTERVAL,
        unknown_kid_interval: float = UNKNOWN_KID_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_metadata_bytes: int = MAX_METADATA_BYTES,
        max_jwks_bytes: int = MAX_JWKS_BYTES,
    ) -> None:
        self.metadata_url = require_secure_url(metadata_url, "metadata_url")
        self.algorithms = tuple(algorithms)
        self.refresh_interval = refresh_interval
        self.unknown_kid_interval = unknown_kid_interval
        self.retry_interval = retry_interval
        self.clock = clock
        self.max_metadata_bytes = max_metadata_bytes
        self.max_jwks_bytes = max_jwks_bytes
        self.metadata: ProviderMetadata | None = None
        self.keys: Mapping[str, RSAPublicKey] = MappingProxyType({})
        self.keys_loaded_at: float | None = None  # on ``clock``, when keys were last fetched
        # Bumped whenever the issuer or the keys change, so validated tokens can be re-checked.
        self.generation = 0
        self._fresh_until = -math.inf
        self._keys_attempted_at = -math.inf
        self._retry_at = -math.inf
        self._fetching = 0  # refreshes in progress (foreground or background)
        self._background = False
        self._last_failure: str | None = None  # for MetadataUnavailableError.internal_detail
        self._lock = threading.Lock()

    # -- decisions --------------------------------------------------------------------------

    def lookup(self, kid: str) -> tuple[RSAPublicKey | None, Refresh | None]:
        """The fast path, without fetching.

        Returns ``(key, refresh_to_start_in_background)`` when the key is known, ``(None, None)``
        when the caller must take the fetch lock and ask :meth:`plan`, and raises when the
        answer is already certain (an unknown ``kid`` that may not trigger a refresh now, or
        nothing known while a recent fetch failed).
        """
        key = self.keys.get(kid)
        if key is not None:
            if not self.refresh_due():
                return key, None
            with self._lock:
                if self._background:
                    return key, None
                self._background = True
                self._fetching += 1
            return key, Refresh(self, metadata=True, background=True)
        if self._fetching:
            return None, None  # a refresh in flight may bring this key: wait for it
        now = self.clock()
        if not self.keys:
            if now < self._retry_at:
                raise self._unavailable(now)
            return None, None
        if now - self._keys_attempted_at < self.unknown_kid_interval:
            raise _unknown_key()
        return None, None

    def refresh_due(self) -> bool:
        """Whether a key lookup now would start the scheduled refresh.

        :meth:`lookup` asks it on its fast path, and the validated-token cache on every hit, so
        that answering from the cache never postpones the refresh that would notice a removed key.
        """
        now = self.clock()
        return not (now < self._fresh_until or self._background or now < self._retry_at)

    def plan(self, kid: str) -> Refresh | None:
        """Under the driver's fetch lock: the refresh this lookup needs now, if any."""
        now = self.clock()
        with self._lock:
            if kid in self.keys:
                return None
            if not self.keys:
                if now < self._retry_at:
                    return None
                self._fetching += 1
                return Refresh(self, metadata=self.metadata is None)
            if now - self._keys_attempted_at < self.unknown_kid_interval:
                return None
            self._keys_attempted_at = now  # claim the slot before fetching
            self._fetching += 1
            return Refresh(self, metadata=False)

    def plan_warm_up(self) -> Refresh | None:
        """Under the driver's fetch lock: discovery and keys to fetch now, unless keys are fresh.

        A warm-up is asked for once, at start-up, so it does not wait out ``retry_interval``.
        """
        now = self.clock()
        with self._lock:
            if self.keys and now < self._fresh_until:
                return None
            self._fetching += 1
            return Refresh(self, metadata=True)

    def require_keys(self) -> None:
        """Raise MetadataUnavailableError (saying why) when no signing key is known."""
        if not self.keys:
            raise self._unavailable(self.clock())

    def resolve(self, kid: str) -> RSAPublicKey:
        """After any fetch: the key, or the error the request gets."""
        key = self.keys.get(kid)
        if key is not None:
            return key
        if not self.keys:
            raise self._unavailable(self.clock())
        raise _unknown_key()

    def _unavailable(self, now: float) -> MetadataUnavailableError:
        wait = max(1, math.ceil(self._retry_at - now)) if self._retry_at > now else 1
        what = "signing keys" if self.metadata is not None else "OpenID Connect metadata"
        detail = f"the issuer's {what} cannot be fetched"
        if self._last_failure:
            detail = f"{detail}: {self._last_failure}"
        return MetadataUnavailableError(UNAVAILABLE, retry_after=wait, internal_detail=detail)

    # -- results (called by Refresh) ---------------------------------------------------------

    def _store_metadata(self, metadata: ProviderMetadata) -> None:
        with self._lock:
            old = self.metadata
            self.metadata = metadata
            if old is not None and old.issuer != metadata.issuer:
                self.generation += 1
                logger.warning(
                    "discovered issuer changed from %s to %s", old.issuer, metadata.issuer
                )
        _telemetry.key_refresh("metadata")

    def _store_keys(self, keys: dict[str, RSAPublicKey]) -> None:
        now = self.clock()
        with self._lock:
            changed = not _same_keys(self.keys, keys)
            if changed:
                self.generation += 1
            self.keys = MappingProxyType(keys)
            self.keys_loaded_at = now
            self._fresh_until = now + self.refresh_interval
            self._keys_attempted_at = now
            self._retry_at = -math.inf
            self._last_failure = None
            self._fetching -= 1
        _telemetry.key_refresh("keys", keys=len(keys), changed=changed)

    def _store_failure(
        self, step: str, url: str, reason: str, remedy: str, *, background: bool
    ) -> None:
        now = self.clock()
        with self._lock:
            self._retry_at = now + self.retry_interval
            self._last_failure = f"GET {url} {reason}" + (f"; fix: {remedy}" if remedy else "")
            if step == "keys":
                self._keys_attempted_at = now
            self._fetching -= 1
            known = bool(self.keys)
        # One event per failed attempt (at most one per retry_interval), never one per request.
        _telemetry.key_refresh_failed(step, url, reason, remedy, kept_keys=known)

    def _background_done(self) -> None:
        with self._lock:
            self._background = False


def _unexpected(exc: Exception) -> tuple[str, str]:
    """``(reason, remedy)`` for an error no fetch step expects (the CA bundle went missing...)."""
    reason = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    if isinstance(exc, ssl.SSLError | OSError):
        return reason, "check the CA bundle (verify=, ENTRA_CA_BUNDLE) is readable"
    return reason, ""


def _same_keys(old: Mapping[str, RSAPublicKey], new: Mapping[str, RSAPublicKey]) -> bool:
    if old.keys() != new.keys():
        return False
    return all(old[kid].public_numbers() == new[kid].public_numbers() for kid in new)


class _Driver:
    """What both drivers share: the cache, and how they connect.

    The SSL context is built on the first fetch rather than here: building it loads httpx and
    the CA bundle, which an import or a validator that is never used should not pay for.
    """

    def __init__(
        self,
        cache: MetadataCache,
        verify: VerifyTypes = True,
        *,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self.cache = cache
        self._verify = verify
        self._timeout = timeout
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            from entra_ciam import http  # httpx loads on the first fetch, not on import

            self._ssl = http.ssl_context(self._verify)
        return self._ssl

    def _fetch_timeout(self) -> httpx.Timeout | float:
        from entra_ciam import http

        return http.DEFAULT_TIMEOUT if self._timeout is None else self._timeout


class MetadataClient(_Driver):
    """Sync driver: fetches with ``httpx.Client``; threads share one fetch lock (single flight)."""

    def __init__(
        self,
        cache: MetadataCache,
        verify: VerifyTypes = True,
        *,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        super().__init__(cache, verify, timeout=timeout)
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> RSAPublicKey:
        key, background = self.cache.lookup(kid)
        if key is not None:
            if background is not None:
                threading.Thread(
                    target=self._refresh_in_background,
                    args=(background,),
                    name="entra-ciam-keys-refresh",
                    daemon=True,
                ).start()
            return key
        with self._lock:
            refresh = self.cache.plan(kid)
            if refresh is not None:
                self._run(refresh)
        return self.cache.resolve(kid)

    def _refresh_in_background(self, refresh: Refresh) -> None:
        with self._lock:
            self._run(refresh)

    def warm_up(self) -> None:
        """Fetch discovery and keys now unless fresh keys are known; raise if none can be had."""
        with self._lock:
            refresh = self.cache.plan_warm_up()
            if refresh is not None:
                self._run(refresh)
        self.cache.require_keys()

    def probe(self, within: float = PROBE_TIMEOUT) -> str | None:
        """Whether the discovery document answers right now: None, or why not (for readiness)."""
        try:
            from entra_ciam import http

            with http.create_client(self._ssl_context(), timeout=within) as client:
                http.fetch(
                    client,
                    self.cache.metadata_url,
                    max_bytes=self.cache.max_metadata_bytes,
                    total_timeout=within,
                )
        except Exception as exc:
            return _probe_error(exc)
        return None

    def _run(self, refresh: Refresh) -> None:
        try:
            from entra_ciam import http

            context, timeout = self._ssl_context(), self._fetch_timeout()
            with http.create_client(context, timeout=timeout) as client:
                while (url := refresh.next_url()) is not None:
                    try:
                        body = http.fetch(client, url, max_bytes=refresh.max_bytes)
                    except http.FetchError as exc:
                        refresh.fail(exc.reason, remedy=exc.remedy)
                    else:
                        refresh.absorb(body)
        except Exception as exc:  # e.g. an unreadable CA bundle: fail closed, keep serving
            reason, remedy = _unexpected(exc)
            refresh.fail(reason, remedy=remedy)
        finally:
            refresh.finish()


class AsyncMetadataClient(_Driver):
    """Async driver: fetches with ``httpx.AsyncClient``; tasks of one loop share a fetch lock."""

    def __init__(
        self,
        cache: MetadataCache,
        verify: VerifyTypes = True,
        *,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        super().__init__(cache, verify, timeout=timeout)
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def _lock(self) -> asyncio.Lock:
        import asyncio  # loaded by whoever runs the loop; a sync-only API never pays for it

        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def key_for(self, kid: str) -> RSAPublicKey:
        key, background = self.cache.lookup(kid)
        if key is not None:
            if background is not None:
                import asyncio

                task = asyncio.get_running_loop().create_task(
                    self._refresh_in_background(background)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return key
        async with self._lock():
            refresh = self.cache.plan(kid)
            if refresh is not None:
                await self._run(refresh)
        return self.cache.resolve(kid)

    async def _refresh_in_background(self, refresh: Refresh) -> None:
        async with self._lock():
            await self._run(refresh)

    async def warm_up(self) -> None:
        """The async twin of :meth:`MetadataClient.warm_up`."""
        async with self._lock():
            refresh = self.cache.plan_warm_up()
            if refresh is not None:
                await self._run(refresh)
        self.cache.require_keys()

    async def probe(self, within: float = PROBE_TIMEOUT) -> str | None:
        """The async twin of :meth:`MetadataClient.probe`."""
        try:
            from entra_ciam import http

            async with http.create_async_client(self._ssl_context(), timeout=within) as client:
                await http.afetch(
                    client,
                    self.cache.metadata_url,
                    max_bytes=self.cache.max_metadata_bytes,
                    total_timeout=within,
                )
        except Exception as exc:
            return _probe_error(exc)
        return None

    async def _run(self, refresh: Refresh) -> None:
        try:
            from entra_ciam import http

            context, timeout = self._ssl_context(), self._fetch_timeout()
            async with http.create_async_client(context, timeout=timeout) as client:
                while (url := refresh.next_url()) is not None:
                    try:
                        body = await http.afetch(client, url, max_bytes=refresh.max_bytes)
                    except http.FetchError as exc:
                        refresh.fail(exc.reason, remedy=exc.remedy)
                    else:
                        refresh.absorb(body)
        except Exception as exc:
            reason, remedy = _unexpected(exc)
            refresh.fail(reason, remedy=remedy)
        finally:
            refresh.finish()


def _probe_error(exc: Exception) -> str:
    from entra_ciam.http import FetchError

    return str(exc) if isinstance(exc, FetchError) else type(exc).__name__
