"""The tenant, its app registrations and its users, read from TOML, JSON or the built-in default.

The shape mirrors the admin center: an app registration may expose an API (scopes and app roles
under an identifier URI), hold a secret, list redirect URIs, and hold admin-consented permissions
on other apps' APIs. Nothing is granted that the file does not name.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from entra_ciam.devidp import defaults
from entra_ciam.urls import is_loopback_host

__all__ = [
    "ISSUER_FORMS",
    "OIDC_SCOPES",
    "OPTIONAL_CLAIMS",
    "AppRegistration",
    "GrantPolicy",
    "Lifetimes",
    "RegistrationError",
    "Registrations",
    "Strict",
    "Tenant",
    "User",
    "default_mapping",
    "load_registrations",
    "redirect_target",
]

# Scopes every client may ask for; they name no API and need no consent.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# Optional claims an app registration may ask for, by token (the manifest's optionalClaims).
OPTIONAL_CLAIMS = {"id_token": frozenset({"login_hint"}), "access_token": frozenset({"idtyp"})}
# "ciamlogin": https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0, as Entra; "loopback": the
# emulator's own https://127.0.0.1:<port>/<tenant-id>/v2.0.
ISSUER_FORMS = ("ciamlogin", "loopback")

_GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PERMISSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_T = TypeVar("_T")
# Object ids are derived, not stored, so they stay the same across restarts.
_OID_NAMESPACE = uuid.UUID("0b6c1f0e-93a2-4d59-a0a4-0d2f5c7b8e11")


class RegistrationError(ValueError):
    """The registrations file is wrong; the message names the entry and the field."""


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    subdomain: str
    name: str
    issuer: str = "ciamlogin"  # one of ISSUER_FORMS

    @property
    def domain(self) -> str:
        """The tenant's initial domain, which Entra accepts in place of its id in URLs."""
        return f"{self.subdomain}.onmicrosoft.com"


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    email: str
    password: str = dataclasses.field(repr=False)
    display_name: str
    oid: str


@dataclasses.dataclass(frozen=True, slots=True)
class AppRegistration:
    """One app registration. ``delegated``/``application`` map a resource client id to grants."""

    name: str
    client_id: str
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    identifier_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    app_roles: tuple[str, ...] = ()
    delegated: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    application: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    # The manifest's optionalClaims: "id_token" -> {"login_hint"}, "access_token" -> {"idtyp"}.
    # Access-token claims come from the API's registration, id-token claims from the client's.
    optional_claims: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    # requestedAccessTokenVersion of an API: 1 is what a manifest left unset gives in Entra.
    access_token_version: int = 2
    # Entra's "Front-channel logout URL": loaded in a hidden frame when the user signs out.
    frontchannel_logout_url: str | None = None
    # A single-page app (public, redirect URIs of the "spa" platform): PKCE is always required.
    spa: bool = False

    @property
    def is_confidential(self) -> bool:
        return self.client_secret is not None

    def wants(self, token: str, claim: str) -> bool:
        """True if this registration asks for optional ``claim`` in its ``token`` tokens."""
        return claim in self.optional_claims.get(token, frozenset())

    @property
    def service_principal_id(self) -> str:
        """The object id app-only tokens carry as ``oid`` and ``sub`` for this app."""
        return str(uuid.uuid5(_OID_NAMESPACE, f"sp:{self.client_id}"))

    def accepts_redirect_uri(self, uri: str) -> bool:
        """Exact match, except that the port of a loopback URI is ignored, as Entra does.

        A URI without a path is the same URI as with ``/`` (``http://localhost:3000`` is
        ``http://localhost:3000/``), as in Entra.
        """
        return _listed(uri, self.redirect_uris)

    def accepts_post_logout_uri(self, uri: str, *, listed_only: bool = False) -> bool:
        """Entra accepts any of the app's redirect URIs; ``post_logout_redirect_uris`` adds more.

        ``listed_only`` (the ``[strict]`` option) accepts only the added list, as the emulator
        once did.
        """
        allowed = self.post_logout_redirect_uris
        if not listed_only:
            allowed = (*allowed, *self.redirect_uris)
        return _listed(uri, allowed)

    def names_resource(self, value: str) -> bool:
        """True if ``value`` is this app's client id or one of its identifier URIs."""
        return value.lower() == self.client_id or value in self.identifier_uris


@dataclasses.dataclass(frozen=True, slots=True)
class Lifetimes:
    """Seconds each artifact lives; tests shorten them, nothing else needs to."""

    access_token: int = defaults.ACCESS_TOKEN_LIFETIME
    id_token: int = defaults.ID_TOKEN_LIFETIME
    authorization_code: int = defaults.AUTH_CODE_LIFETIME
    refresh_token: int = defaults.REFRESH_TOKEN_LIFETIME
    # A SPA's refresh tokens: fixed from the sign-in, not renewed by use, as in Entra.
    spa_refresh_token: int = defaults.SPA_REFRESH_TOKEN_LIFETIME
    one_time_passcode: int = defaults.OTP_LIFETIME
    key_grace_period: int = defaults.KEY_GRACE_PERIOD


@dataclasses.dataclass(frozen=True, slots=True)
class GrantPolicy:
    """How the token endpoint treats grants (the ``[grants]`` table).

    ``refresh_token_reuse``: Entra does not revoke a refresh token when it is used, so a refresh
    token stays good until it expires even after a newer one was issued (the default). False is
    strict one-time rotation as in OAuth 2.1 for public clients: a refresh token is good once, and
    a second use revokes every refresh token of the same sign-in (``--one-time-refresh-tokens``).
    """

    refresh_token_reuse: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Strict:
    """Behaviours stricter than Entra's, off by default (the ``[strict]`` table).

    Each catches a client that works against Entra only by luck; none is what Entra does.
    """

    # Entra requires PKCE from public clients and SPAs only.
    pkce_for_confidential_clients: bool = False
    # Entra accepts any registered redirect URI as post_logout_redirect_uri.
    post_logout_uris_listed_only: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Registrations:
    tenant: Tenant
    apps: tuple[AppRegistration, ...]
    users: tuple[User, ...]
    lifetimes: Lifetimes = Lifetimes()
    strict: Strict = Strict()
    grants: GrantPolicy = GrantPolicy()

    @classmethod
    def default(cls, **changes: Any) -> Registrations:
        """The built-in tenant (see :mod:`entra_ciam.devidp.defaults`)."""
        return cls.from_mapping(default_mapping(**changes))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "registrations"
    ) -> Registrations:
        return _parse(data, source)

    def with_one_time_refresh_tokens(self) -> Registrations:
        """The same tenant with strict one-time refresh tokens (reuse revokes the sign-in)."""
        return dataclasses.replace(self, grants=GrantPolicy(refresh_token_reuse=False))

    def app(self, client_id: str) -> AppRegistration | None:
        client_id = client_id.strip().lower()
        return next((a for a in self.apps if a.client_id == client_id), None)

    def app_named(self, name: str) -> AppRegistration:
        for app in self.apps:
            if app.name == name:
                return app
        raise KeyError(name)

    def resource(self, identifier: str) -> AppRegistration | None:
        """The app whose API ``identifier`` (client id or identifier URI) names."""
        return next((a for a in self.apps if a.names_resource(identifier)), None)

    def user(self, email: str) -> User | None:
        email = email.strip().lower()
        return next((u for u in self.users if u.email == email), None)

    def user_by_oid(self, oid: str) -> User | None:
        return next((u for u in self.users if u.oid == oid), None)


def user_oid(tenant_id: str, email: str) -> str:
    return str(uuid.uuid5(_OID_NAMESPACE, f"user:{tenant_id}:{email.lower()}"))


def default_mapping(
    *,
    extra_redirect_uris: Sequence[str] = (),
    extra_post_logout_redirect_uris: Sequence[str] = (),
    lifetimes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The built-in registrations as the mapping a TOML or JSON file would hold.

    Tests copy and change it to describe other tenants (an app missing a grant, say).
    """
    web_redirects = [*defaults.WEB_APP_REDIRECT_URIS, *extra_redirect_uris]
    web_logouts = [*defaults.WEB_APP_POST_LOGOUT_REDIRECT_URIS, *extra_post_logout_redirect_uris]
    mapping: dict[str, Any] = {
        "tenant": {
            "id": defaults.TENANT_ID,
            "subdomain": defaults.TENANT_SUBDOMAIN,
            "name": defaults.TENANT_NAME,
        },
        "apps": [
            {
                "name": "web-app",
                "client_id": defaults.WEB_APP_CLIENT_ID,
                "client_secret": defaults.WEB_APP_CLIENT_SECRET,
                "redirect_uris": web_redirects,
                "post_logout_redirect_uris": web_logouts,
                "delegated_permissions": {
                    "todo-api": list(defaults.TODO_API_SCOPES),
                    "graph": ["User.Read"],
                },
                "optional_claims": {"id_token": ["login_hint"]},
            },
            {
                "name": "todo-api",
                "client_id": defaults.TODO_API_CLIENT_ID,
                "client_secret": defaults.TODO_API_CLIENT_SECRET,
                "identifier_uris": [defaults.TODO_API_IDENTIFIER_URI],
                "scopes": list(defaults.TODO_API_SCOPES),
                "app_roles": list(defaults.TODO_API_APP_ROLES),
                "delegated_permissions": {"graph": ["User.Read"]},
                # As Microsoft's how-to configures the API: idtyp in access tokens.
                "optional_claims": {"access_token": ["idtyp"]},
            },
            {
                "name": "daemon",
                "client_id": defaults.DAEMON_CLIENT_ID,
                "client_secret": defaults.DAEMON_CLIENT_SECRET,
                "application_permissions": {"todo-api": list(defaults.TODO_API_APP_ROLES)},
            },
        ],
        "users": [
            {"email": email, "password": password, "display_name": name}
            for email, password, name in defaults.USERS
        ],
    }
    if lifetimes:
        mapping["lifetimes"] = dict(lifetimes)
    return copy.deepcopy(mapping)


def load_registrations(path: str | Path | None = None) -> Registrations:
    """Read a ``.toml`` or ``.json`` file, or return the built-in default when ``path`` is None."""
    if path is None:
        return Registrations.default()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistrationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistrationError(f"{path} is not valid {path.suffix[1:] or 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistrationError(f"{path} must hold a table/object at the top level")
    return Registrations.from_mapping(data, source=str(path))


# -- parsing ----------------------------------------------------------------------------------

_GRAPH = {
    "name": "graph",
    "client_id": defaults.GRAPH_CLIENT_ID,
    "identifier_uris": [defaults.GRAPH_IDENTIFIER_URI],
    "scopes": ["User.Read"],
}

_APP_KEYS = {
    "name",
    "client_id",
    "client_secret",
    "redirect_uris",
    "post_logout_redirect_uris",
    "identifier_uris",
    "scopes",
    "app_roles",
    "delegated_permissions",
    "application_permissions",
    "optional_claims",
    "access_token_version",
    "frontchannel_logout_url",
    "spa",
}


class _Reader:
    """Collects every problem in a file so one run shows them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def text(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.fail(where, f"'{key}' is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"'{key}' must be a non-empty string")
            return ""
        return value.strip()

    def texts(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(where, f"'{key}' must be a list of strings")
            return ()
        return tuple(value)

    def guid(self, table: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(table, key, where).lower()
        if value and not _GUID_RE.match(value):
            self.fail(where, f"'{key}' must be a GUID, got {value!r}")
        return value


def _parse(data: Mapping[str, Any], source: str) -> Registrations:
    r = _Reader(source)
    tenant_table = data.get("tenant")
    if not isinstance(tenant_table, dict):
        raise RegistrationError(f"{source}: a [tenant] table with 'id' and 'subdomain' is required")
    tenant_id = r.guid(tenant_table, "id", "[tenant]")
    subdomain = r.text(tenant_table, "subdomain", "[tenant]").lower()
    if subdomain and not _SUBDOMAIN_RE.match(subdomain):
        r.fail("[tenant]", f"'subdomain' must be one DNS label, got {subdomain!r}")
    name = tenant_table.get("name") or f"{subdomain} (local emulator)"
    issuer = tenant_table.get("issuer", "ciamlogin")
    if issuer not in ISSUER_FORMS:
        r.fail("[tenant]", f"'issuer' must be one of {', '.join(ISSUER_FORMS)}, got {issuer!r}")
        issuer = "ciamlogin"
    tenant = Tenant(id=tenant_id, subdomain=subdomain, name=str(name), issuer=issuer)

    lifetimes = _parse_lifetimes(data.get("lifetimes", {}), r)
    strict = _parse_strict(data.get("strict", {}), r)
    grants = _parse_grants(data.get("grants", {}), r)

    raw_apps = data.get("apps", [])
    if not isinstance(raw_apps, list):
        r.fail("apps", "must be a list of tables ([[apps]])")
        raw_apps = []
    if not any(isinstance(a, dict) and a.get("client_id") == _GRAPH["client_id"] for a in raw_apps):
        raw_apps = [*raw_apps, _GRAPH]
    drafts = [_parse_app(raw, i, r) for i, raw in enumerate(raw_apps)]
    apps = _resolve_permissions([d for d in drafts if d is not None], r)

    seen: set[str] = set()
    for app in apps:
        for key in (app.name, app.client_id, *app.identifier_uris):
            if key in seen:
                r.fail(f"app '{app.name}'", f"{key!r} is used by another app")
            seen.add(key)

    users = _parse_users(data.get("users", []), tenant_id, r)
    if r.problems:
        raise RegistrationError(
            f"{source} has problems:\n" + "\n".join(f"  - {p}" for p in r.problems)
        )
    return Registrations(
        tenant=tenant,
        apps=tuple(apps),
        users=tuple(users),
        lifetimes=lifetimes,
        strict=strict,
        grants=grants,
    )


def _parse_strict(table: Any, r: _Reader) -> Strict:
    return _settings(
        table, Strict, "[strict]", r, lambda v: isinstance(v, bool), "must be true or false"
    )


def _parse_grants(table: Any, r: _Reader) -> GrantPolicy:
    return _settings(
        table, GrantPolicy, "[grants]", r, lambda v: isinstance(v, bool), "must be true or false"
    )


def _parse_lifetimes(table: Any, r: _Reader) -> Lifetimes:
    return _settings(
        table,
        Lifetimes,
        "[lifetimes]",
        r,
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "must be a whole number of seconds >= 0",
    )


def _settings(
    table: Any,
    cls: Callable[..., _T],
    where: str,
    r: _Reader,
    valid: Callable[[Any], bool],
    expected: str,
) -> _T:
    """A table of a settings dataclass's fields: unknown keys and bad values are problems."""
    if not isinstance(table, dict):
        r.fail(where, "must be a table")
        return cls()
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            r.fail(where, f"unknown key {key!r} (known: {', '.join(sorted(fields))})")
        elif not valid(value):
            r.fail(where, f"'{key}' {expected}")
        else:
            values[key] = value
    return cls(**values)


def _parse_app(raw: Any, index: int, r: _Reader) -> dict[str, Any] | None:
    where = f"apps[{index}]"
    if not isinstance(raw, dict):
        r.fail(where, "must be a table")
        return None
    name = r.text(raw, "name", where)
    where = f"app '{name or index}'"
    for key in raw:
        if key not in _APP_KEYS:
            r.fail(where, f"unknown key {key!r}")
    client_id = r.guid(raw, "client_id", where)
    secret = r.text(raw, "client_secret", where, required=False) or None
    redirects = r.texts(raw, "redirect_uris", where)
    logouts = r.texts(raw, "post_logout_redirect_uris", where)
    for uri in (*redirects, *logouts):
        problem = _check_redirect_uri(uri)
        if problem:
            r.fail(where, problem)
    scopes = r.texts(raw, "scopes", where)
    roles = r.texts(raw, "app_roles", where)
    for value in (*scopes, *roles):
        if not _PERMISSION_RE.match(value) or value.lower() in OIDC_SCOPES:
            r.fail(where, f"{value!r} is not a valid scope or app role name")
    identifier_uris = r.texts(raw, "identifier_uris", where)
    if (scopes or roles) and not identifier_uris and client_id:
        identifier_uris = (f"api://{client_id}",)
    version = raw.get("access_token_version", 2)
    if version not in (1, 2) or isinstance(version, bool):
        r.fail(where, "'access_token_version' must be 1 or 2 (requestedAccessTokenVersion)")
        version = 2
    frontchannel = r.text(raw, "frontchannel_logout_url", where, required=False) or None
    if frontchannel is not None:
        problem = _check_redirect_uri(frontchannel)
        if problem:
            r.fail(where, problem)
    spa = raw.get("spa", False)
    if not isinstance(spa, bool):
        r.fail(where, "'spa' must be true or false")
        spa = False
    if spa and secret:
        r.fail(where, "a single-page app ('spa' = true) is a public client: remove its secret")
    return {
        "name": name,
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": redirects,
        "post_logout_redirect_uris": logouts,
        "identifier_uris": identifier_uris,
        "scopes": scopes,
        "app_roles": roles,
        "delegated_permissions": raw.get("delegated_permissions", {}),
        "application_permissions": raw.get("application_permissions", {}),
        "optional_claims": _parse_optional_claims(raw.get("optional_claims", {}), where, r),
        "access_token_version": version,
        "frontchannel_logout_url": frontchannel,
        "spa": spa,
        "where": where,
    }


def _parse_optional_claims(table: Any, where: str, r: _Reader) -> dict[str, frozenset[str]]:
    if not isinstance(table, dict):
        r.fail(where, "'optional_claims' must be a table of token = [claims]")
        return {}
    out: dict[str, frozenset[str]] = {}
    for token, names in table.items():
        known = OPTIONAL_CLAIMS.get(token)
        if known is None:
            r.fail(where, f"'optional_claims' names {token!r}; use id_token or access_token")
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            r.fail(where, f"'optional_claims.{token}' must be a list of strings")
            continue
        unknown = sorted(set(names) - known)
        if unknown:
            r.fail(
                where,
                f"'optional_claims.{token}' asks for {unknown}; the emulator knows {sorted(known)}",
            )
        out[token] = frozenset(names) & known
    return out


def _resolve_permissions(drafts: list[dict[str, Any]], r: _Reader) -> list[AppRegistration]:
    def find(ref: str) -> dict[str, Any] | None:
        for d in drafts:
            if ref in (d["name"], d["client_id"]) or ref in d["identifier_uris"]:
                return d
        return None

    def grants(draft: dict[str, Any], key: str, exposed: str) -> dict[str, frozenset[str]]:
        table = draft[key]
        out: dict[str, frozenset[str]] = {}
        if not isinstance(table, dict):
            r.fail(draft["where"], f"'{key}' must be a table of resource = [names]")
            return out
        for ref, names in table.items():
            resource = find(str(ref))
            if resource is None:
                r.fail(draft["where"], f"'{key}' names {ref!r}, which is no app in this file")
                continue
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                r.fail(draft["where"], f"'{key}.{ref}' must be a list of strings")
                continue
            unknown = [n for n in names if n not in resource[exposed]]
            if unknown:
                r.fail(
                    draft["where"],
                    f"'{key}.{ref}' grants {unknown}, which '{resource['name']}' does not expose "
                    f"(it exposes {list(resource[exposed])})",
                )
            out[resource["client_id"]] = frozenset(n for n in names if n in resource[exposed])
        return out

    apps = []
    for d in drafts:
        apps.append(
            AppRegistration(
                name=d["name"],
                client_id=d["client_id"],
                client_secret=d["client_secret"],
                redirect_uris=d["redirect_uris"],
                post_logout_redirect_uris=d["post_logout_redirect_uris"],
                identifier_uris=d["identifier_uris"],
                scopes=d["scopes"],
                app_roles=d["app_roles"],
                delegated=grants(d, "delegated_permissions", "scopes"),
                application=grants(d, "application_permissions", "app_roles"),
                optional_claims=d["optional_claims"],
                access_token_version=d["access_token_version"],
                frontchannel_logout_url=d["frontchannel_logout_url"],
                spa=d["spa"],
            )
        )
    return apps


def _parse_users(raw_users: Any, tenant_id: str, r: _Reader) -> list[User]:
    if not isinstance(raw_users, list):
        r.fail("users", "must be a list of tables ([[users]])")
        return []
    users: list[User] = []
    emails: set[str] = set()
    for i, raw in enumerate(raw_users):
        where = f"users[{i}]"
        if not isinstance(raw, dict):
            r.fail(where, "must be a table")
            continue
        email = r.text(raw, "email", where).lower()
        if email and not _EMAIL_RE.match(email):
            r.fail(where, f"'email' is not an email address: {email!r}")
        if email in emails:
            r.fail(where, f"{email!r} appears twice")
        emails.add(email)
        password = r.text(raw, "password", where)
        display_name = r.text(raw, "display_name", where, required=False) or email.split("@")[0]
        oid = raw.get("oid")
        if oid is not None:
            oid = r.guid(raw, "oid", where)
        users.append(
            User(
                email=email,
                password=password,
                display_name=display_name,
                oid=oid or user_oid(tenant_id, email),
            )
        )
    return users


def _check_redirect_uri(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"{uri!r} is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{uri!r} must be an absolute http(s) URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{uri!r} must use https unless its host is loopback"
    if parts.fragment:
        return f"{uri!r} must carry no fragment"
    return None


def redirect_target(uri: str) -> str:
    """Where a browser is sent for ``uri``: with ``/`` as its path when it has none.

    Entra answers a path-less redirect URI at ``/`` (its "Redirect URI restrictions": the
    trailing slash is appended in the response), and so is a redirect after sign-out. A URI
    that is not a URL is returned unchanged; nothing unchecked ever reaches here.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.path or not parts.netloc:
        return uri
    return urlunsplit(parts._replace(path="/"))


def _listed(uri: str, registered: Sequence[str]) -> bool:
    """Is ``uri`` one of ``registered``: exactly (an empty path being ``/``) or as loopback?"""
    wanted = redirect_target(uri)
    if any(wanted == redirect_target(r) for r in registered):
        return True
    return any(_same_loopback_uri(uri, r) for r in registered)


def _same_loopback_uri(candidate: str, registered: str) -> bool:
    try:
        a, b = urlsplit(candidate), urlsplit(registered)
        a.port, b.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        is_loopback_host(a.hostname)
        and a.scheme == b.scheme
        and a.hostname == b.hostname
        and (a.path or "/") == (b.path or "/")
        and a.query == b.query
        and not a.fragment
        and a.username is None
        and a.password is None
    )
