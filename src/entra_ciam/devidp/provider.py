"""The tenant itself, independent of HTTP: its URLs, users, keys, grants and metadata.

``Provider`` wires the parts together once the listening ports are known, because the issuer
and every endpoint URL contain them.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from entra_ciam.devidp.authorize import RESPONSE_MODES
from entra_ciam.devidp.directory import UserDirectory
from entra_ciam.devidp.grants import GRANT_TYPES, TokenService
from entra_ciam.devidp.keys import KeyStore
from entra_ciam.devidp.registrations import ISSUER_FORMS, Registrations
from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.store import GrantStore
from entra_ciam.devidp.tokens import TokenMinter

__all__ = ["ISSUER_FORMS", "Clock", "Endpoints", "Provider"]


class Clock:
    """Wall-clock time plus an offset that tests may advance (codes expire without sleeping)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoints:
    """Where each endpoint lives, and what the tenant calls itself in tokens.

    Every endpoint answers on the https origin (the authority's); discovery sends browsers to the
    plain-http pages origin for authorize and logout, so a developer's browser needs no local CA.
    The issuer is the real form ``https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0`` unless
    ``issuer_form`` is ``"loopback"`` (``<authority>/v2.0``, the emulator's old behaviour).
    """

    https_base: str  # https://127.0.0.1:8443
    pages_base: str  # http://127.0.0.1:8080
    tenant_id: str
    issuer_form: str = "ciamlogin"

    @property
    def authority(self) -> str:
        return f"{self.https_base}/{self.tenant_id}"

    @property
    def oidc_authority(self) -> str:
        """What MSAL takes as ``oidc_authority``: discovery lives under it."""
        return f"{self.authority}/v2.0"

    @property
    def issuer(self) -> str:
        if self.issuer_form == "loopback":
            return self.oidc_authority
        return f"https://{self.tenant_id}.ciamlogin.com/{self.tenant_id}/v2.0"

    @property
    def v1_issuer(self) -> str:
        """The issuer of v1.0 access tokens (an API whose manifest asks for version 1)."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def metadata_url(self) -> str:
        return f"{self.oidc_authority}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def userinfo_endpoint(self) -> str:
        """Microsoft Graph's ``/oidc/userinfo``, served on the https origin."""
        return f"{self.https_base}/oidc/userinfo"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.pages_base}/{self.tenant_id}/oauth2/v2.0/authorize"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.pages_base}/{self.tenant_id}/oauth2/v2.0/logout"


# First path segments of the endpoints, for authorities with no tenant in the path (the host names
# the tenant, as ``https://<sub>.ciamlogin.com/`` does).
_TENANT_LESS = frozenset({"v2.0", ".well-known", "oauth2", "discovery"})


_CLAIMS = (
    "sub iss aud exp iat nbf auth_time nonce name preferred_username email oid tid sid ver azp "
    "azpacr scp roles idtyp uti login_hint"
)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Provider:
    def __init__(
        self,
        registrations: Registrations,
        endpoints: Endpoints,
        *,
        state: StateDir | None,
        clock: Clock | None = None,
        test_mode: bool = False,
        announce: Callable[[str], None] = _stderr,
    ) -> None:
        self.registrations = registrations
        self.endpoints = endpoints
        self.state = state
        self.clock = clock or Clock()
        self.test_mode = test_mode
        self.announce = announce
        self.directory = UserDirectory(registrations, state)
        self.keys = KeyStore(
            state, clock=self.clock, grace_period=registrations.lifetimes.key_grace_period
        )
        self.store = GrantStore(self.clock)
        self.minter = TokenMinter(
            issuer=endpoints.issuer,
            v1_issuer=endpoints.v1_issuer,
            tenant_id=registrations.tenant.id,
            keys=self.keys,
            clock=self.clock,
        )
        self.tokens = TokenService(
            registrations=registrations,
            directory=self.directory,
            store=self.store,
            minter=self.minter,
            lifetimes=registrations.lifetimes,
        )

    def names_tenant(self, segment: str) -> bool:
        """Entra accepts the tenant id or its initial domain in the path."""
        segment = segment.lower()
        tenant = self.registrations.tenant
        return segment in (tenant.id, tenant.domain)

    def tenant_path(self, path: str) -> tuple[str, str | None]:
        """Split ``/<tenant>/<rest>`` into (tenant segment, rest); rest is None for another tenant.

        A path with no tenant (``/oauth2/v2.0/logout``) is this tenant's: the emulator's host
        names it, as ``<sub>.ciamlogin.com`` does.
        """
        tenant, _, rest = path.strip("/").partition("/")
        if not tenant or self.names_tenant(tenant):
            return tenant, rest
        if tenant in _TENANT_LESS:
            return "", path.strip("/")
        return tenant, None

    def discovery(self) -> dict[str, Any]:
        e = self.endpoints
        return {
            "issuer": e.issuer,
            "authorization_endpoint": e.authorization_endpoint,
            "token_endpoint": e.token_endpoint,
            "end_session_endpoint": e.end_session_endpoint,
            "jwks_uri": e.jwks_uri,
            "userinfo_endpoint": e.userinfo_endpoint,
            "response_types_supported": ["code"],
            "response_modes_supported": list(RESPONSE_MODES),
            "grant_types_supported": list(GRANT_TYPES),
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": _CLAIMS.split(),
            "request_uri_parameter_supported": False,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": "NA",
            "cloud_instance_name": "ciamlogin.com",
        }
