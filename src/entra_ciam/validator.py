"""Validate Entra access tokens for an API: signature, issuer, audience, tenant, time and scopes.

``validate`` and ``validate_async`` share every rule; they differ only in how keys are fetched
(:mod:`entra_ciam.metadata`). Tokens seen before are answered from a bounded cache keyed by a hash
of the token, with the time claims checked again on every hit.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import math
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from entra_ciam import jose
from entra_ciam import telemetry as _telemetry
from entra_ciam.claims import Claims
from entra_ciam.config import GUID_RE, EntraConfig
from entra_ciam.errors import AuthError, ConfigError, InvalidTokenError, MetadataUnavailableError
from entra_ciam.metadata import (
    REFRESH_INTERVAL,
    RETRY_INTERVAL,
    UNKNOWN_KID_INTERVAL,
    AsyncMetadataClient,
    MetadataCache,
    MetadataClient,
)
from entra_ciam.urls import require_secure_url
from entra_ciam.warmup import OnError, warm_up, warm_up_async

if TYPE_CHECKING:
    import httpx

    from entra_ciam.http import VerifyTypes

__all__ = ["AccessTokenValidator"]

logger = logging.getLogger(__name__)

_UNREACHABLE: Final = (MetadataUnavailableError,)
_MAX_TIME: Final = 253402300799  # 9999-12-31T23:59:59Z: anything later is not a time
# Identity claims an API keys data or decisions on: a number or a list there is malformed, not
# absent (``Claims`` would read it as None and, say, pool every such caller under one owner).
# ``tid`` is checked with the tenant; ``idtyp`` decides ``Claims.is_app_only`` when present.
_STRING_CLAIMS: Final = ("sub", "oid", "azp", "idtyp")


class _Entry:
    """A validated token remembered until its ``exp``."""

    __slots__ = ("claims", "expires", "generation", "not_before")

    def __init__(self, claims: Claims, not_before: float, expires: float, generation: int) -> None:
        self.claims = claims
        self.not_before = not_before
        self.expires = expires
        self.generation = generation


class _Pending:
    """A token that passed the sans-IO checks and now needs its key."""

    __slots__ = ("digest", "jws")

    def __init__(self, jws: jose.JWS, digest: bytes) -> None:
        self.jws = jws
        self.digest = digest


class AccessTokenValidator:
    """Checks bearer tokens issued by one Entra tenant for one API.

    Give ``authority`` (any form :class:`EntraConfig` accepts) or ``metadata_url``, and the API's
    ``audience`` (its client id; a sequence accepts several). The issuer, keys and tenant come from
    discovery unless ``issuer`` / ``tenant_id`` pin them. ``verify`` is True or a CA bundle path.

    ``accept_v1_audience`` also accepts ``api://<client-id>``; ``allowed_versions`` lists the
    accepted ``ver`` values. ``cache_size`` bounds the validated-token cache (0 turns it off).
    ``refresh_interval`` (12 h), ``unknown_kid_interval`` (5 min) and ``retry_interval`` (10 s)
    pace the key cache on the monotonic ``clock``; ``http_timeout`` bounds each fetch (default:
    3 s to connect, 5 s per read or write). httpx itself loads on the first fetch, not on import.
    """

    def __init__(
        self,
        authority: str | None = None,
        audience: str | Iterable[str] | None = None,
        *,
        metadata_url: str | None = None,
        issuer: str | None = None,
        tenant_id: str | None = None,
        algorithms: Iterable[str] = jose.DEFAULT_ALGORITHMS,
        leeway: float = 60,
        verify: VerifyTypes = True,
        accept_v1_audience: bool = False,
        allowed_versions: Iterable[str] = ("2.0",),
        cache_size: int = 4096,
        refresh_interval: float = REFRESH_INTERVAL,
        unknown_kid_interval: float = UNKNOWN_KID_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        http_timeout: httpx.Timeout | float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        try:
            self.algorithms = jose.check_algorithms(algorithms)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        verify = _check_verify(verify)
        metadata_url, configured_tenant = _metadata_url(authority, metadata_url, tenant_id)
        self.audiences = _audiences(audience, accept_v1_audience)
        if issuer is not None:
            try:
                require_secure_url(issuer, "issuer")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if not (isinstance(leeway, int | float) and 0 <= leeway <= 600):
            raise ConfigError(f"leeway must be between 0 and 600 seconds, got {leeway!r}")
        self.issuer = issuer
        self.tenant_id = configured_tenant
        self.leeway = float(leeway)
        self.allowed_versions = frozenset(allowed_versions)
        if not self.allowed_versions:
            raise ConfigError(
                'allowed_versions must name at least one token version, e.g. ("2.0",)'
            )
        try:
            self.metadata = MetadataCache(
                metadata_url,
                algorithms=self.algorithms,
                refresh_interval=refresh_interval,
                unknown_kid_interval=unknown_kid_interval,
                retry_interval=retry_interval,
                clock=clock or time.monotonic,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._sync = MetadataClient(self.metadata, verify, timeout=http_timeout)
        self._async = AsyncMetadataClient(self.metadata, verify, timeout=http_timeout)
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._cache_size = max(0, int(cache_size))
        self._inserts_since_sweep = 0
        self._cache_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: EntraConfig, **options: Any) -> AccessTokenValidator:
        """A validator for the config's API (``api_client_id``), trusting its CA bundle."""
        config.require("api_client_id", purpose="Validating access tokens")
        options.setdefault("tenant_id", config.tenant_id)
        options.setdefault("verify", config.verify)
        return cls(config.authority, config.api_client_id, **options)

    @property
    def metadata_url(self) -> str:
        return self.metadata.metadata_url

    def __repr__(self) -> str:
        return (
            f"AccessTokenValidator(metadata_url={self.metadata_url!r}, "
            f"audience={sorted(self.audiences)!r})"
        )

    # -- public API ---------------------------------------------------------------------------

    def validate(self, token: str) -> Claims:
        """The token's claims if it is valid for this API; raise an AuthError subclass otherwise."""
        try:
            pending = self._begin(token)
            if type(pending) is Claims:
                return pending
            assert type(pending) is _Pending
            return self._finish(pending, self._sync.key_for(pending.jws.kid))
        except AuthError as exc:
            _telemetry.token_refused(exc)
            raise
        except Exception as exc:
            raise _internal_error(exc) from None

    async def validate_async(self, token: str) -> Claims:
        """Like :meth:`validate`; discovery and keys are fetched without blocking the loop."""
        try:
            pending = self._begin(token)
            if type(pending) is Claims:
                return pending
            assert type(pending) is _Pending
            return self._finish(pending, await self._async.key_for(pending.jws.kid))
        except AuthError as exc:
            _telemetry.token_refused(exc)
            raise
        except Exception as exc:
            raise _internal_error(exc) from None

    def warm_up(self, *, on_error: OnError = "raise") -> bool:
        """Fetch discovery and keys now, at start-up (see :mod:`entra_ciam.warmup`).

        ``on_error="raise"`` raises MetadataUnavailableError when they cannot be had;
        ``"log"`` logs ``warm_up_failed`` and returns False.
        """
        return warm_up("validator", self._sync.warm_up, on_error, _UNREACHABLE, self._key_count)

    async def warm_up_async(self, *, on_error: OnError = "raise") -> bool:
        """Like :meth:`warm_up`, without blocking the event loop (for ASGI lifespans)."""
        return await warm_up_async(
            "validator", self._async.warm_up, on_error, _UNREACHABLE, self._key_count
        )

    def probe(self) -> str | None:
        """Whether the discovery document answers now (for readiness): None, or why not."""
        return self._sync.probe()

    async def probe_async(self) -> str | None:
        """The async twin of :meth:`probe`."""
        return await self._async.probe()

    def _key_count(self) -> int:
        return len(self.metadata.keys)

    # -- the shared, sans-IO steps ------------------------------------------------------------

    def _begin(self, token: str) -> Claims | _Pending:
        if type(token) is str and len(token) <= jose.MAX_TOKEN_LENGTH:
            digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            entry = self._cache.get(digest)
            if entry is not None:
                now = time.time()
                metadata = self.metadata
                if (
                    entry.not_before <= now < entry.expires
                    and entry.generation == metadata.generation
                ):
                    if not metadata.refresh_due():
                        if _telemetry.active:
                            _telemetry.recorder.cache_hit()
                        return entry.claims
                    # a key refresh is due: take the full path, which starts it
                    return _Pending(jose.parse(token, self.algorithms), b"")
                with self._cache_lock:  # expired, or the keys changed: validate again
                    self._cache.pop(digest, None)
        else:
            digest = b""
        return _Pending(jose.parse(token, self.algorithms), digest)

    def _finish(self, pending: _Pending, key: RSAPublicKey) -> Claims:
        generation = self.metadata.generation
        jws = pending.jws
        jose.verify(jws, key)
        payload = jose.decode_payload(jws)
        not_before, expires = self._check_claims(payload)
        claims = Claims._from_payload(payload)
        if pending.digest and self._cache_size:
            self._remember(pending.digest, _Entry(claims, not_before, expires, generation))
        _telemetry.recorder.validated()
        return claims

    def _remember(self, digest: bytes, entry: _Entry) -> None:
        # O(1) per token: under a stream of new tokens the cache stays full, so a scan of it on
        # every insertion would cost more than the RSA check. Expired entries are swept once
        # per ``cache_size`` insertions; otherwise the oldest entry makes room.
        with self._cache_lock:
            cache = self._cache
            if len(cache) >= self._cache_size:
                self._inserts_since_sweep += 1
                if self._inserts_since_sweep >= self._cache_size:
                    self._inserts_since_sweep = 0
                    now = time.time()
                    for stale in [d for d, e in cache.items() if e.expires <= now]:
                        del cache[stale]
                while len(cache) >= self._cache_size:
                    cache.popitem(last=False)  # oldest first
            cache[digest] = entry

    def _check_claims(self, payload: dict[str, Any]) -> tuple[float, float]:
        """Raise InvalidTokenError naming the first claim that fails; return the cache window."""
        metadata = self.metadata.metadata
        expected_issuer = self.issuer or (metadata.issuer if metadata is not None else None)
        if payload.get("ver") == "1.0" and "1.0" not in self.allowed_versions:
            raise InvalidTokenError(_V1_REFUSAL)
        iss = payload.get("iss")
        if type(iss) is not str:
            raise InvalidTokenError("the token has no iss (issuer) claim")
        if iss != expected_issuer:
            raise InvalidTokenError(f"issuer {_show(iss)} is not accepted")

        aud = payload.get("aud")
        if type(aud) is str:
            if aud not in self.audiences:
                raise InvalidTokenError(f"audience {_show(aud)} is not accepted")
        elif type(aud) is list and aud and all(type(a) is str for a in aud):
            if self.audiences.isdisjoint(aud):
                raise InvalidTokenError(f"audience {_show(' '.join(aud))} is not accepted")
        else:
            raise InvalidTokenError("the token has no aud (audience) claim")

        tenant = self.tenant_id or (metadata.tenant_id if metadata is not None else None)
        tid = payload.get("tid")
        if type(tid) is not str:
            raise InvalidTokenError("the token has no tid (tenant id) claim")
        if tenant is None:
            logger.error("cannot check tid: configure tenant_id (the issuer names no tenant id)")
            raise InvalidTokenError("the API cannot check the token tenant")
        if tid.lower() != tenant:
            raise InvalidTokenError(f"tenant {_show(tid)} is not accepted")

        ver = payload.get("ver")
        if type(ver) is not str or ver not in self.allowed_versions:
            shown = _show(ver) if type(ver) is str else "(none)"
            raise InvalidTokenError(
                f"token version {shown} is not accepted (accepted: "
                f"{', '.join(sorted(self.allowed_versions))})"
            )

        now = time.time()
        leeway = self.leeway
        exp = _time_claim(payload, "exp", required=True)
        assert exp is not None
        if now >= exp + leeway:
            raise InvalidTokenError(f"the token expired at {_iso(exp)}")
        nbf = _time_claim(payload, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise InvalidTokenError(f"the token is not valid before {_iso(nbf)}")
        iat = _time_claim(payload, "iat")
        if iat is not None and iat > now + leeway:
            raise InvalidTokenError(f"the token was issued in the future ({_iso(iat)})")

        # Present means present: "scp": null is a malformed scp, not a missing one (a token
        # with roles and a null scp would otherwise pass as a user token with no scopes).
        has_scp = "scp" in payload
        has_roles = "roles" in payload
        if not (has_scp or has_roles):
            raise InvalidTokenError("the token carries neither scp (scopes) nor roles")
        if has_scp:
            scp = payload["scp"]
            if type(scp) is not str or not scp.strip():
                raise InvalidTokenError("the token scp claim is not a space-separated string")
        if has_roles:
            roles = payload["roles"]
            if not (type(roles) is list and all(type(r) is str for r in roles)):
                raise InvalidTokenError("the token roles claim is not a list of strings")
        for name in _STRING_CLAIMS:
            if name in payload and type(payload[name]) is not str:
                raise InvalidTokenError(f"the token {name} claim is not a string")

        not_before = max(nbf or -math.inf, iat or -math.inf) - leeway
        return not_before, exp


def _metadata_url(
    authority: str | None, metadata_url: str | None, tenant_id: str | None
) -> tuple[str, str | None]:
    """The discovery URL and the configured tenant GUID (or None, to take it from the issuer)."""
    if tenant_id is not None and not (isinstance(tenant_id, str) and GUID_RE.match(tenant_id)):
        raise ConfigError(
            f"tenant_id must be the tenant GUID, got {tenant_id!r}. "
            "Example: tenant_id='aaaabbbb-0000-cccc-1111-dddd2222eeee'"
        )
    tenant = tenant_id.lower() if tenant_id else None
    if (authority is None) == (metadata_url is None):
        raise ConfigError(
            "give exactly one of authority (e.g. 'https://contoso.ciamlogin.com/<tenant-id>') "
            "or metadata_url (e.g. 'https://contoso.ciamlogin.com/<tenant-id>/v2.0/"
            ".well-known/openid-configuration')"
        )
    if authority is not None:
        config = EntraConfig(authority=authority, tenant_id=tenant_id)
        return config.metadata_url, config.tenant_id
    assert metadata_url is not None
    return metadata_url, tenant


def _check_verify(verify: VerifyTypes) -> VerifyTypes:
    """True, or an SSL context: a CA bundle that cannot be loaded is a configuration error."""
    if verify is True or isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        raise ConfigError(
            "verify=False would trust any TLS certificate, and so any signing key; pass the CA "
            "bundle path instead. Example: ENTRA_CA_BUNDLE=/etc/ssl/certs/corporate-proxy-ca.pem"
        )
    if not isinstance(verify, str) or not os.path.exists(verify):
        raise ConfigError(
            f"verify must be True or the path of a CA bundle, got {verify!r}. "
            "Example: verify='/etc/ssl/certs/corporate-proxy-ca.pem'"
        )
    from entra_ciam.http import ssl_context  # httpx: loaded here, not on import

    try:
        return ssl_context(verify)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"the CA bundle {verify!r} cannot be loaded: {exc}") from None


def _audiences(audience: str | Iterable[str] | None, accept_v1: bool) -> frozenset[str]:
    if audience is None:
        raise ConfigError(
            "audience is required: the API's application (client) id, "
            "e.g. audience='11112222-bbbb-3333-cccc-4444dddd5555'"
        )
    values = [audience] if isinstance(audience, str) else list(audience)
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise ConfigError(
            f"audience must be a non-empty string or list of strings, got {audience!r}"
        )
    accepted = {v.strip() for v in values}
    if accept_v1:
        accepted |= {f"api://{v}" for v in accepted if GUID_RE.match(v)}
    return frozenset(accepted)


def _time_claim(payload: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidTokenError(f"the token has no {name} claim")
        return None
    if type(value) not in (int, float) or not 0 <= value <= _MAX_TIME:
        raise InvalidTokenError(f"the token {name} claim is not a valid time")
    return float(value)


def _iso(timestamp: float) -> str:
    moment = _dt.datetime.fromtimestamp(int(timestamp), _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# What Entra issues to an API whose manifest leaves the token version unset, and the fix.
_V1_REFUSAL = (
    "token version '1.0' is not accepted: Entra issues v1.0 access tokens to an API whose "
    "manifest leaves the version unset; set requestedAccessTokenVersion "
    "(accessTokenAcceptedVersion) to 2 in the API app registration's manifest"
)


def _show(value: str) -> str:
    """A claim value for an error message: short and printable (it is attacker-chosen)."""
    shown = value[:200]
    return repr(shown + ("..." if len(value) > 200 else ""))


def _internal_error(exc: Exception) -> InvalidTokenError:
    # Fail closed without echoing anything: the exception text might quote the input.
    logger.error("unexpected %s while validating a token", type(exc).__name__)
    error = InvalidTokenError("the token could not be validated")
    _telemetry.token_refused(error)
    return error
