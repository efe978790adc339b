"""The token endpoint: client authentication and the four grants, as pure request -> response steps.

Grants: authorization code with PKCE (S256), refresh token (a new one with every refresh; the
used one stays good as in Entra, or with ``GrantPolicy(refresh_token_reuse=False)`` dies, and a
reuse revokes the family), client credentials (``<api>/.default``) and on-behalf-of (jwt-bearer).
Errors are ``OAuthError``; the HTTP layer turns them into Entra's JSON. As in Entra, PKCE is
required from public clients and SPAs and optional for confidential web apps.

Every token request is counted by grant type (``TokenService.counts``), so tests can see how many
redemptions really reached the identity provider, whatever the client believes it sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

from entra_ciam.devidp.directory import UserDirectory
from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.registrations import (
    AppRegistration,
    GrantPolicy,
    Lifetimes,
    Registrations,
    User,
    redirect_target,
)
from entra_ciam.devidp.scopes import DelegatedGrant, resolve_app_only, resolve_delegated
from entra_ciam.devidp.store import GrantStore, RefreshGrant
from entra_ciam.devidp.tokens import TokenMinter

__all__ = ["JWT_BEARER", "TokenCounts", "TokenService"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", JWT_BEARER)
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def _missing(name: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


class TokenCounts:
    """Token requests by grant type: every one that named a grant, and those that got tokens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested: Counter[str] = Counter()
        self._issued: Counter[str] = Counter()

    def requested(self, grant_type: str) -> None:
        with self._lock:
            self._requested[grant_type if grant_type in GRANT_TYPES else "other"] += 1

    def issued(self, grant_type: str) -> None:
        with self._lock:
            self._issued[grant_type] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"requested": {grant: n}, "issued": {grant: n}}``, copies."""
        with self._lock:
            return {"requested": dict(self._requested), "issued": dict(self._issued)}

    def reset(self) -> None:
        with self._lock:
            self._requested.clear()
            self._issued.clear()


class TokenService:
    def __init__(
        self,
        *,
        registrations: Registrations,
        directory: UserDirectory,
        store: GrantStore,
        minter: TokenMinter,
        lifetimes: Lifetimes,
        policy: GrantPolicy | None = None,
    ) -> None:
        self.registrations = registrations
        self.directory = directory
        self.store = store
        self.minter = minter
        self.lifetimes = lifetimes
        self.policy = policy if policy is not None else registrations.grants
        self.counts = TokenCounts()

    def handle(
        self,
        form: Mapping[str, Sequence[str]],
        authorization: str | None = None,
        *,
        origin: str | None = None,
    ) -> dict[str, Any]:
        """Answer one token request; raise OAuthError for every refusal.

        ``origin`` is the request's ``Origin`` header: a browser sends it on a cross-origin
        request, so it tells a single-page app's redemption from a server's.
        """
        params = _single_values(form)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise _missing("grant_type")
        self.counts.requested(grant_type)
        response = self._grant(grant_type, params, authorization, origin or None)
        self.counts.issued(grant_type)
        return response

    def _grant(
        self,
        grant_type: str,
        params: dict[str, str],
        authorization: str | None,
        origin: str | None,
    ) -> dict[str, Any]:
        client = self._authenticate(params, authorization)
        _check_origin(client, grant_type, origin)
        if grant_type == "authorization_code":
            return self._authorization_code(client, params)
        if grant_type == "refresh_token":
            return self._refresh_token(client, params)
        if grant_type == "client_credentials":
            return self._client_credentials(client, params)
        if grant_type == JWT_BEARER:
            return self._on_behalf_of(client, params)
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'. Supported: "
            f"{', '.join(GRANT_TYPES)}.",
        )

    # -- client authentication ---------------------------------------------------------------

    def _authenticate(self, params: dict[str, str], authorization: str | None) -> AppRegistration:
        basic = _basic_credentials(authorization)
        client_id = params.get("client_id")
        secret = params.get("client_secret")
        if basic is not None:
            if secret is not None or (client_id and client_id != basic[0]):
                raise OAuthError(
                    "invalid_request",
                    90023,
                    "Send client credentials either in the Authorization header or in the body, "
                    "not both.",
                )
            client_id, secret = basic
        if "client_assertion" in params:
            raise OAuthError(
                "invalid_client",
                700027,
                "Client assertions (certificate credentials) are not supported by the emulator; "
                "use the client secret.",
            )
        if not client_id:
            raise _missing("client_id")
        client = self.registrations.app(client_id)
        if client is None:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.registrations.tenant.name}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        if client.client_secret is None:
            if secret is not None:
                raise OAuthError(
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be "
                    "presented.",
                )
            return client
        if secret is None:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        if not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
            raise OAuthError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client.client_id}'.",
            )
        return client

    # -- grants ------------------------------------------------------------------------------

    def _authorization_code(
        self, client: AppRegistration, params: dict[str, str]
    ) -> dict[str, Any]:
        code = params.get("code")
        if not code:
            raise _missing("code")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise _missing("redirect_uri")
        issued = self.store.redeem_code(code, client.client_id)  # consumed from here on
        # One URI, with or without the "/" of an empty path, as Entra compares them.
        if redirect_target(redirect_uri) != redirect_target(issued.redirect_uri):
            self.store.revoke_family(issued.family)
            raise OAuthError(
                "invalid_grant",
                500112,
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{issued.redirect_uri}' provided when requesting Authorization code.",
            )
        verifier = params.get("code_verifier")
        if issued.code_challenge is None:
            if verifier is not None:
                # The authorize request had no challenge: a verifier now means a confused client.
                self.store.revoke_family(issued.family)
                raise OAuthError(
                    "invalid_grant",
                    501481,
                    "A code_verifier was sent but the authorization request carried no "
                    "code_challenge.",
                )
        elif not verifier:
            self.store.revoke_family(issued.family)
            raise _missing("code_verifier")
        elif not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(
            _s256(verifier), issued.code_challenge
        ):
            self.store.revoke_family(issued.family)
            raise OAuthError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization "
                "request.",
            )
        user = self._user(issued.user_oid)
        grant = self._requested_or(client, params, issued.grant)
        return self._user_tokens(
            client=client,
            user=user,
            grant=grant,
            oidc=issued.grant.oidc | grant.oidc,
            sid=issued.sid,
            nonce=issued.nonce,
            auth_time=issued.auth_time if issued.include_auth_time else None,
            family=issued.family,
            want_client_info=params.get("client_info") == "1",
            refresh_expires_at=None,
        )

    def _refresh_token(self, client: AppRegistration, params: dict[str, str]) -> dict[str, Any]:
        token = params.get("refresh_token")
        if not token:
            raise _missing("refresh_token")
        previous = self.store.redeem_refresh(
            token, client.client_id, one_time=not self.policy.refresh_token_reuse
        )
        user = self._user(previous.user_oid)
        grant = resolve_delegated(self.registrations, client, params.get("scope") or previous.scope)
        return self._user_tokens(
            client=client,
            user=user,
            grant=grant,
            oidc=grant.oidc | (previous.oidc & {"offline_access"}),
            sid=previous.sid,
            nonce=None,
            auth_time=None,
            family=previous.family,
            want_client_info=params.get("client_info") == "1",
            # A SPA's refresh tokens keep the first one's expiry: 24 hours, then a sign-in.
            refresh_expires_at=previous.expires_at if client.spa else None,
        )

    def _client_credentials(
        self, client: AppRegistration, params: dict[str, str]
    ) -> dict[str, Any]:
        if not client.is_confidential:
            raise OAuthError(
                "unauthorized_client",
                7000218,
                "A public client cannot use the client credentials grant: it has no credential.",
            )
        grant = resolve_app_only(self.registrations, client, params.get("scope"))
        lifetime = self.lifetimes.access_token
        token = self.minter.app_access_token(
            client=client, resource=grant.resource, roles=grant.roles, lifetime=lifetime
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
            "scope": grant.response_scope,
        }

    def _on_behalf_of(self, client: AppRegistration, params: dict[str, str]) -> dict[str, Any]:
        if params.get("requested_token_use") != "on_behalf_of":
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'requested_token_use' "
                "with the value 'on_behalf_of'.",
            )
        if not client.is_confidential:
            raise OAuthError(
                "unauthorized_client",
                7000114,
                f"Application '{client.client_id}' is a public client and cannot make "
                "on-behalf-of calls.",
            )
        assertion = params.get("assertion")
        if not assertion:
            raise _missing("assertion")
        claims = self.minter.verify_user_assertion(
            assertion, [client.client_id, *client.identifier_uris]
        )
        user = self._user(claims["oid"])
        grant = resolve_delegated(self.registrations, client, params.get("scope"))
        sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        return self._user_tokens(
            client=client,
            user=user,
            grant=grant,
            oidc=grant.oidc,
            sid=sid or "",
            nonce=None,
            auth_time=None,
            family=self.store.new_family(),
            want_client_info=params.get("client_info") == "1",
            refresh_expires_at=None,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _requested_or(
        self, client: AppRegistration, params: dict[str, str], default: DelegatedGrant
    ) -> DelegatedGrant:
        """At code redemption the client may name the scopes again (MSAL does); honour them."""
        scope = params.get("scope")
        if not scope:
            return default
        return resolve_delegated(self.registrations, client, scope)

    def _user(self, oid: str) -> User:
        user = self.directory.by_oid(oid)
        if user is None:
            raise OAuthError(
                "invalid_grant",
                50034,
                "The user account does not exist in the directory. To sign into this "
                "application, the account must be added to the directory.",
            )
        return user

    def _user_tokens(
        self,
        *,
        client: AppRegistration,
        user: User,
        grant: DelegatedGrant,
        oidc: frozenset[str],
        sid: str,
        nonce: str | None,
        auth_time: int | None,
        family: str,
        want_client_info: bool,
        refresh_expires_at: float | None,
    ) -> dict[str, Any]:
        """The token response. ``refresh_expires_at`` carries a SPA refresh token's fixed expiry
        over to the new one; None starts a full lifetime (24 hours for a SPA, as in Entra)."""
        lifetimes = self.lifetimes
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": grant.response_scope,
            "expires_in": lifetimes.access_token,
            "ext_expires_in": lifetimes.access_token,
            "access_token": self.minter.user_access_token(
                user=user, client=client, grant=grant, sid=sid, lifetime=lifetimes.access_token
            ),
        }
        if "offline_access" in oidc:
            now = self.minter.clock()
            if refresh_expires_at is None:
                lifetime = lifetimes.spa_refresh_token if client.spa else lifetimes.refresh_token
                refresh_expires_at = now + lifetime
            response["refresh_token"] = self.store.issue_refresh(
                RefreshGrant(
                    family=family,
                    client_id=client.client_id,
                    user_oid=user.oid,
                    sid=sid,
                    oidc=oidc,
                    scope=grant.response_scope,
                    issued_at=now,
                    expires_at=refresh_expires_at,
                )
            )
            if client.spa:
                # Entra tells only SPAs when their (fixed) refresh token expires.
                response["refresh_token_expires_in"] = max(0, int(refresh_expires_at - now))
        if "openid" in oidc:
            response["id_token"] = self.minter.id_token(
                user=user,
                client=client,
                nonce=nonce,
                sid=sid,
                auth_time=auth_time,
                with_email="email" in oidc,
                lifetime=lifetimes.id_token,
            )
        if want_client_info:
            response["client_info"] = self.minter.client_info(user)
        return response


def _check_origin(client: AppRegistration, grant_type: str, origin: str | None) -> None:
    """Entra ties SPA tokens to the browser and keeps everyone else's out of it.

    A browser marks a cross-origin request with ``Origin``. A SPA (redirect URIs of the "spa"
    platform) must redeem its codes and refresh tokens that way, and no other client may
    redeem anything from a browser, where its secret or tokens would be exposed.
    """
    if origin is not None and not client.spa:
        raise OAuthError(
            "invalid_request",
            9002326,
            "Cross-origin token redemption is permitted only for the 'Single-Page Application' "
            f"client-type. Request origin: '{origin}'.",
        )
    if origin is None and client.spa and grant_type in ("authorization_code", "refresh_token"):
        raise OAuthError(
            "invalid_request",
            9002327,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed "
            "via cross-origin requests.",
        )


def _single_values(form: Mapping[str, Sequence[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, values in form.items():
        if len(values) > 1:
            raise OAuthError(
                "invalid_request", 90100, f"The parameter '{name}' is given more than once."
            )
        if values and values[0] != "":
            out[name] = values[0]
    return out


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", 7000215, "The Authorization header is not valid Basic credentials."
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError(
            "invalid_client", 7000215, "The Authorization header is not valid Basic credentials."
        )
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
