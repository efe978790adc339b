"""Settings for a tenant and its app registrations, from arguments or ``ENTRA_*`` variables.

Every authority form Entra accepts is reduced to one normalised ``authority`` (scheme, host and a
tenant path segment, no trailing slash); endpoints are never built from it by hand except the
discovery document URL, which is where Entra publishes them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from entra_ciam.errors import ConfigError
from entra_ciam.urls import is_loopback_host

__all__ = ["EntraConfig"]

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
)
_SUBDOMAIN_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_PLACEHOLDER_RE = re.compile(r"enter[_ ]the[_ ].*|<[^>]*>|\byour[_-]", re.IGNORECASE)
# Tenants that name no single directory: a token from them could come from anyone.
_MULTI_TENANT = {"common", "organizations", "consumers"}

_EXAMPLE_GUID = "aaaabbbb-0000-cccc-1111-dddd2222eeee"

# field -> (environment variable, a valid example)
_SETTINGS: dict[str, tuple[str, str]] = {
    "authority": ("ENTRA_AUTHORITY", f"https://contoso.ciamlogin.com/{_EXAMPLE_GUID}"),
    "tenant_subdomain": ("ENTRA_TENANT_SUBDOMAIN", "contoso"),
    "tenant_id": ("ENTRA_TENANT_ID", _EXAMPLE_GUID),
    "client_id": ("ENTRA_CLIENT_ID", "00001111-aaaa-2222-bbbb-3333cccc4444"),
    "client_secret": ("ENTRA_CLIENT_SECRET", "the secret's Value from Certificates & secrets"),
    "api_client_id": ("ENTRA_API_CLIENT_ID", "11112222-bbbb-3333-cccc-4444dddd5555"),
    "ca_bundle": ("ENTRA_CA_BUNDLE", "/etc/ssl/certs/corporate-proxy-ca.pem"),
    "redirect_uri": ("ENTRA_REDIRECT_URI", "http://localhost:3000/auth/redirect"),
    "post_logout_redirect_uri": ("ENTRA_POST_LOGOUT_REDIRECT_URI", "http://localhost:3000/"),
    "session_store": ("ENTRA_SESSION_STORE", "sqlite:///var/lib/myapp/sessions.db"),
    # Replaced by a fresh key in messages (see _example): a value to paste, not a recipe.
    "session_secret": ("ENTRA_SESSION_SECRET", "a Fernet key"),
}
_NEW_KEY_COMMAND = "python -c 'from entra_ciam.sessions import generate_key; print(generate_key())'"


_SECRETS = frozenset({"client_secret", "session_secret"})


def _env_name(field: str) -> str:
    return _SETTINGS[field][0]


def _example(field: str) -> str:
    env, example = _SETTINGS[field]
    if field == "session_secret":
        # Only on this error path: the key maker lives with the session stores.
        from entra_ciam.sessions.tokencache import generate_key

        return f"{env}={generate_key()} (a new random key; make another with {_NEW_KEY_COMMAND})"
    return f"{env}={example}"


@dataclasses.dataclass(frozen=True, slots=True)
class EntraConfig:
    """One tenant, the web app registration and the API registration.

    ``authority`` accepts every form Entra uses: ``https://<sub>.ciamlogin.com/`` (tenant
    ``<sub>.onmicrosoft.com``), ``https://<sub>.ciamlogin.com/<tenant-id or domain>``, a custom URL
    domain ``https://login.contoso.com/<tenant-id>``, and a workforce
    ``https://login.microsoftonline.com/<tenant-id>``. ``tenant_subdomain`` with ``tenant_id`` may
    stand in for it. Only the settings a feature needs are required by that feature.
    """

    authority: str = ""
    client_id: str | None = None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    api_client_id: str | None = None
    tenant_id: str | None = None
    tenant_subdomain: str | None = None
    ca_bundle: str | None = None
    redirect_uri: str | None = None
    post_logout_redirect_uri: str | None = None
    session_store: str | None = None
    session_secret: str | None = dataclasses.field(default=None, repr=False)
    # Which names the messages use for each field: argument names, or ENTRA_* when from_env().
    _from_env: bool = dataclasses.field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        values = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in _SETTINGS
        }
        for name, value in values.items():
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(f"{self._label(name)} must be a string, got {type(value).__name__}")
                continue
            stripped = value.strip()
            if stripped != value:
                object.__setattr__(self, name, stripped)
            if stripped == "":
                object.__setattr__(self, name, None)
            elif _PLACEHOLDER_RE.search(stripped):
                shown = "" if name in _SECRETS else f" {stripped!r}"  # never echo a secret
                problems.append(
                    f"{self._label(name)} still holds the placeholder{shown}: replace it "
                    f"with the value from the Microsoft Entra admin center. Example: {_example(name)}"
                )
        if problems:
            raise ConfigError(self._message(problems))

        for name in ("client_id", "api_client_id", "tenant_id"):
            value = getattr(self, name)
            if value is not None and not GUID_RE.match(value):
                problems.append(
                    f"{self._label(name)} must be a GUID, got {value!r}. Example: {_example(name)}"
                )
            elif value is not None:
                object.__setattr__(self, name, value.lower())  # Entra writes GUIDs in lower case
        if self.tenant_subdomain is not None and not _SUBDOMAIN_RE.match(self.tenant_subdomain):
            problems.append(
                f"{self._label('tenant_subdomain')} must be the first label of "
                f"<sub>.ciamlogin.com, got {self.tenant_subdomain!r}. Example: {_example('tenant_subdomain')}"
            )
        for name in ("redirect_uri", "post_logout_redirect_uri"):
            value = getattr(self, name)
            if value is not None:
                problem = _check_app_url(value)
                if problem:
                    problems.append(f"{self._label(name)} {problem}. Example: {_example(name)}")
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            problems.append(
                f"{self._label('ca_bundle')} names no readable file: {self.ca_bundle!r}. "
                f"Example: {_example('ca_bundle')}"
            )
        if problems:
            raise ConfigError(self._message(problems))

        authority = self._resolve_authority(problems)
        if problems:
            raise ConfigError(self._message(problems))
        object.__setattr__(self, "authority", authority)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EntraConfig:
        """Read ``ENTRA_*`` variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for name, (var, _example_value) in _SETTINGS.items():
            if var in env and env[var].strip():
                kwargs[name] = env[var]
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs, _from_env=True)

    def replace(self, **changes: Any) -> EntraConfig:
        return dataclasses.replace(self, **changes)

    # -- derived values -----------------------------------------------------------------------

    @property
    def tenant(self) -> str:
        """The tenant path segment of the authority: a GUID or a domain."""
        return urlsplit(self.authority).path.strip("/")

    @property
    def metadata_url(self) -> str:
        """Where the tenant publishes its OpenID Connect metadata (v2.0 endpoints)."""
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    @property
    def oidc_authority(self) -> str:
        """The value MSAL takes as ``oidc_authority``."""
        return f"{self.authority}/v2.0"

    @property
    def verify(self) -> str | bool:
        """What httpx takes as ``verify``: the CA bundle path, or True for the system store."""
        return self.ca_bundle if self.ca_bundle else True

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.authority).hostname)

    def require(self, *fields: str, purpose: str) -> None:
        """Raise one ConfigError naming every field in ``fields`` that is not set."""
        missing = [f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            lines = [f"{self._label(f)} is not set. Example: {_example(f)}" for f in missing]
            raise ConfigError(self._message(lines, f"{purpose} needs more settings"))

    # -- helpers ------------------------------------------------------------------------------

    def _label(self, field: str) -> str:
        env = _env_name(field)
        return env if self._from_env else f"{field} ({env})"

    @staticmethod
    def _message(problems: Iterable[str], head: str = "Invalid Entra configuration") -> str:
        return head + ":\n" + "\n".join(f"  - {p}" for p in problems)

    def _resolve_authority(self, problems: list[str]) -> str:
        if not self.authority:
            if self.tenant_subdomain and self.tenant_id:
                return f"https://{self.tenant_subdomain.lower()}.ciamlogin.com/{self.tenant_id.lower()}"
            if self.tenant_subdomain:
                sub = self.tenant_subdomain.lower()
                return f"https://{sub}.ciamlogin.com/{sub}.onmicrosoft.com"
            problems.append(
                f"{self._label('authority')} is not set (or set {_env_name('tenant_subdomain')} and "
                f"{_env_name('tenant_id')}). Example: {_example('authority')}"
            )
            return ""
        label = self._label("authority")
        try:
            parts = urlsplit(self.authority)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            problems.append(
                f"{label} is not a URL: {self.authority!r}. Example: {_example('authority')}"
            )
            return ""
        if parts.scheme not in ("https", "http") or not host:
            problems.append(
                f"{label} must be an https URL, got {self.authority!r}. Example: {_example('authority')}"
            )
            return ""
        if parts.scheme == "http" and not is_loopback_host(host):
            problems.append(
                f"{label} must use https (http only on loopback hosts), got {self.authority!r}. "
                f"Example: {_example('authority')}"
            )
            return ""
        if parts.username or parts.password:
            problems.append(
                f"{label} must carry no credentials (user:password@). "
                f"Example: {_example('authority')}"
            )
            return ""
        if parts.query or parts.fragment:
            problems.append(
                f"{label} must carry no query or fragment: {self.authority!r}. "
                f"Example: {_example('authority')}"
            )
            return ""
        segments = [s for s in parts.path.split("/") if s]
        if segments and segments[-1].lower() == "v2.0":
            segments = segments[:-1]  # the MSAL oidc_authority form
        host_part = f"[{host}]" if ":" in host else host
        netloc = host_part if port is None else f"{host_part}:{port}"
        if not segments:
            if host.endswith(".ciamlogin.com"):
                sub = host.removesuffix(".ciamlogin.com")
                segments = [f"{sub}.onmicrosoft.com"]
            else:
                problems.append(
                    f"{label} must end with the tenant (its id or domain), got {self.authority!r}. "
                    f"Example: {_example('authority')}"
                )
                return ""
        if len(segments) != 1:
            problems.append(
                f"{label} must be the host followed by one tenant segment, got {self.authority!r}. "
                f"Example: {_example('authority')}"
            )
            return ""
        tenant = segments[0].lower()
        if tenant in _MULTI_TENANT:
            problems.append(
                f"{label} names {tenant!r}, which is not one tenant; tokens from any directory would "
                f"match. Use the tenant id. Example: {_example('authority')}"
            )
            return ""
        if not (GUID_RE.match(tenant) or _DOMAIN_RE.match(tenant)):
            problems.append(
                f"{label} ends with {segments[0]!r}, which is neither a tenant id nor a domain. "
                f"Example: {_example('authority')}"
            )
            return ""
        if GUID_RE.match(tenant):
            if self.tenant_id and self.tenant_id.lower() != tenant:
                problems.append(
                    f"{label} names tenant {tenant} but {self._label('tenant_id')} is "
                    f"{self.tenant_id}: they must agree"
                )
                return ""
            object.__setattr__(self, "tenant_id", tenant)
        elif self.tenant_id:
            object.__setattr__(self, "tenant_id", self.tenant_id.lower())
        return f"{parts.scheme}://{netloc}/{tenant}"


def _check_app_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"is not a URL: {url!r}"
    if parts.scheme not in ("http", "https") or not host:
        return f"must be an absolute http(s) URL, got {url!r}"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"must use https unless the host is loopback, got {url!r}"
    if parts.fragment:
        return f"must carry no fragment, got {url!r}"
    return None
