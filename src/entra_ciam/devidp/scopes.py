"""Turn a requested ``scope`` string into what a token may carry, or refuse it the way Entra does.

A request names at most one API (plus the OpenID scopes); every delegated scope must be exposed by
that API and consented for the client; app-only requests use ``<api>/.default`` and receive the
app roles an administrator granted.
"""

from __future__ import annotations

import dataclasses

from entra_ciam.devidp import defaults
from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.registrations import OIDC_SCOPES, AppRegistration, Registrations

__all__ = ["AppGrant", "DelegatedGrant", "resolve_app_only", "resolve_delegated"]

_OIDC_ORDER = ("openid", "profile", "email", "offline_access")


@dataclasses.dataclass(frozen=True, slots=True)
class DelegatedGrant:
    """Scopes for one API, on a user's behalf."""

    resource: AppRegistration
    scopes: tuple[str, ...]  # permission names, as the API registered them (the ``scp`` claim)
    oidc: frozenset[str]  # openid, profile, email, offline_access as requested
    response_scope: str  # what the token response's ``scope`` says

    @property
    def wants_id_token(self) -> bool:
        return "openid" in self.oidc

    @property
    def wants_refresh_token(self) -> bool:
        return "offline_access" in self.oidc


@dataclasses.dataclass(frozen=True, slots=True)
class AppGrant:
    """App roles on one API, for the app itself (client credentials)."""

    resource: AppRegistration
    roles: tuple[str, ...]
    response_scope: str


def _split(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split(" ") if s]


def _missing_scope() -> OAuthError:
    return OAuthError(
        "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
    )


def _lookup_resource(registrations: Registrations, prefix: str) -> AppRegistration:
    resource = registrations.resource(prefix)
    if resource is None:
        raise OAuthError(
            "invalid_resource",
            500011,
            f"The resource principal named {prefix} was not found in the tenant named "
            f"{registrations.tenant.name}. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You might have sent your authentication request to the wrong tenant.",
        )
    return resource


def resolve_delegated(
    registrations: Registrations,
    client: AppRegistration,
    scope: str | None,
    *,
    consent_error: str = "invalid_grant",
) -> DelegatedGrant:
    """Resolve a user-facing request. ``consent_error`` is ``consent_required`` at /authorize."""
    requested = _split(scope)
    if not requested:
        raise _missing_scope()
    oidc: set[str] = set()
    wanted: dict[str, list[tuple[str, str]]] = {}  # resource client id -> [(prefix, name)]
    resources: dict[str, AppRegistration] = {}
    for item in requested:
        if item.lower() in OIDC_SCOPES:
            oidc.add(item.lower())
            continue
        prefix, sep, name = item.rpartition("/")
        if not sep:  # a bare name means Microsoft Graph, as in Entra
            prefix, name = "", item
        resource = _lookup_resource(registrations, prefix or defaults.GRAPH_CLIENT_ID)
        resources[resource.client_id] = resource
        wanted.setdefault(resource.client_id, []).append((prefix, name))
    if len(resources) > 1:
        raise OAuthError(
            "invalid_scope",
            700022,
            "The provided value for the input parameter scope is not valid because it contains "
            f"more than one resource. Scope {scope} is not valid.",
        )
    if not resources:
        # OpenID scopes alone: Entra issues an access token for Microsoft Graph.
        graph = registrations.app(defaults.GRAPH_CLIENT_ID)
        assert graph is not None  # always registered
        granted = sorted(client.delegated.get(graph.client_id, frozenset()))
        names = [*granted, *(s for s in ("openid", "profile", "email") if s in oidc)]
        if not names:
            raise OAuthError(
                "invalid_scope",
                700023,
                "The provided value for the input parameter scope is not valid when requesting "
                f"an access token. Scope {scope} is not valid.",
            )
        return DelegatedGrant(graph, tuple(names), frozenset(oidc), _response_scope([], oidc))

    (resource,) = resources.values()
    granted_set = client.delegated.get(resource.client_id, frozenset())
    by_lower = {s.lower(): s for s in resource.scopes}
    permissions: list[str] = []
    echoed: list[str] = []
    for prefix, name in wanted[resource.client_id]:
        if name.lower() == ".default":
            chosen = sorted(granted_set)
        elif name.lower() in by_lower:
            chosen = [by_lower[name.lower()]]
        else:
            raise OAuthError(
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. "
                f"The scope {prefix + '/' if prefix else ''}{name} is not valid.",
            )
        if not chosen or not set(chosen) <= granted_set:
            raise _consent_required(consent_error, client, resource)
        for permission in chosen:
            if permission not in permissions:
                permissions.append(permission)
                echoed.append(f"{prefix}/{permission}" if prefix else permission)
    return DelegatedGrant(
        resource, tuple(permissions), frozenset(oidc), _response_scope(echoed, oidc)
    )


def resolve_app_only(
    registrations: Registrations, client: AppRegistration, scope: str | None
) -> AppGrant:
    """Resolve a client credentials request: exactly one ``<api>/.default``."""
    requested = _split(scope)
    if not requested:
        raise _missing_scope()
    if len(requested) != 1 or not requested[0].endswith("/.default"):
        raise OAuthError(
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have "
            "a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    prefix = requested[0].removesuffix("/.default")
    resource = _lookup_resource(registrations, prefix)
    roles = tuple(sorted(client.application.get(resource.client_id, frozenset())))
    if not roles:
        # Entra would issue a token with no roles; we refuse, since no API should accept one.
        raise OAuthError(
            "invalid_grant",
            501051,
            f"Application '{client.client_id}'({client.name}) is not assigned to a role for the "
            f"application '{prefix}'({resource.name}). An administrator must grant it an "
            "application permission (app role) first.",
        )
    return AppGrant(resource, roles, requested[0])


def _consent_required(error: str, client: AppRegistration, resource: AppRegistration) -> OAuthError:
    return OAuthError(
        error,
        65001,
        f"The user or administrator has not consented to use the application with ID "
        f"'{client.client_id}' named '{client.name}'. Send an interactive authorization request "
        f"for this user and resource. (The permission on '{resource.name}' has no admin consent.)",
        suberror="consent_required",
    )


def _response_scope(echoed: list[str], oidc: set[str]) -> str:
    return " ".join([*echoed, *(s for s in _OIDC_ORDER if s in oidc)])
