"""Mint id tokens and v2 access tokens with the claims Entra External ID puts in them.

Signed RS256 with the current key and only ``kid``/``typ``/``alg`` in the header. ``sub`` is
pairwise: the same user gets a different ``sub`` in each app, while ``oid`` stays the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import jwt

from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.keys import KeyStore
from entra_ciam.devidp.registrations import AppRegistration, User
from entra_ciam.devidp.scopes import DelegatedGrant

__all__ = ["TokenMinter"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _opaque(n: int = 16) -> str:
    return _b64url(secrets.token_bytes(n))


class TokenMinter:
    def __init__(
        self, *, issuer: str, tenant_id: str, keys: KeyStore, clock: Callable[[], float]
    ) -> None:
        self.issuer = issuer
        self.tenant_id = tenant_id
        self.keys = keys
        self.clock = clock

    # -- claims -----------------------------------------------------------------------------

    def pairwise_sub(self, oid: str, app_client_id: str) -> str:
        digest = hmac.new(
            self.tenant_id.encode(), f"{app_client_id}:{oid}".encode(), hashlib.sha256
        )
        return _b64url(digest.digest())

    def _base(self, audience: str, lifetime: int) -> dict[str, Any]:
        now = int(self.clock())
        return {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": _opaque(24),
        }

    def user_access_token(
        self,
        *,
        user: User,
        client: AppRegistration,
        grant: DelegatedGrant,
        sid: str,
        lifetime: int,
    ) -> str:
        claims = self._base(grant.resource.client_id, lifetime)
        claims.update(
            {
                "azp": client.client_id,
                "azpacr": "1" if client.is_confidential else "0",
                "name": user.display_name,
                "oid": user.oid,
                "preferred_username": user.email,
                "rh": _opaque(),
                "scp": " ".join(grant.scopes),
                "sid": sid,
                "sub": self.pairwise_sub(user.oid, grant.resource.client_id),
                "tid": self.tenant_id,
                "uti": _opaque(),
                "ver": "2.0",
            }
        )
        return self.sign(claims)

    def app_access_token(
        self,
        *,
        client: AppRegistration,
        resource: AppRegistration,
        roles: Sequence[str],
        lifetime: int,
    ) -> str:
        claims = self._base(resource.client_id, lifetime)
        claims.update(
            {
                "azp": client.client_id,
                "azpacr": "1",
                "idtyp": "app",
                "oid": client.service_principal_id,
                "rh": _opaque(),
                "roles": list(roles),
                "sub": client.service_principal_id,
                "tid": self.tenant_id,
                "uti": _opaque(),
                "ver": "2.0",
            }
        )
        return self.sign(claims)

    def id_token(
        self,
        *,
        user: User,
        client: AppRegistration,
        nonce: str | None,
        sid: str,
        auth_time: int | None,
        with_email: bool,
        lifetime: int,
    ) -> str:
        claims = self._base(client.client_id, lifetime)
        claims.update(
            {
                "name": user.display_name,
                "oid": user.oid,
                "preferred_username": user.email,
                "rh": _opaque(),
                "sid": sid,
                "sub": self.pairwise_sub(user.oid, client.client_id),
                "tid": self.tenant_id,
                "uti": _opaque(),
                "ver": "2.0",
            }
        )
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if with_email:
            claims["email"] = user.email
        return self.sign(claims)

    def client_info(self, user: User) -> str:
        """What MSAL reads to name the account: ``{"uid": oid, "utid": tenant id}``."""
        return _b64url(json.dumps({"uid": user.oid, "utid": self.tenant_id}).encode())

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.current
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

    # -- reading our own tokens (on-behalf-of assertions) -------------------------------------

    def verify_user_assertion(self, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        """Check a user access token we issued; raise Entra's assertion errors otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _bad_assertion("The assertion is not a well-formed JWT.") from exc
        kid = header.get("kid")
        key = self.keys.find(kid) if isinstance(kid, str) else None
        if header.get("alg") != "RS256" or key is None:
            raise _bad_assertion("Assertion failed signature validation.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                audience=list(audiences),
                issuer=self.issuer,
                options={"require": ["exp", "nbf", "iat", "aud", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as exc:
            raise OAuthError(
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range. Ensure that the access token is "
                "not expired before using it for user assertion, or request a new token.",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise _bad_assertion(
                "Assertion audience does not match the Client app presenting the assertion. "
                f"The expected audience is one of {list(audiences)}."
            ) from exc
        except jwt.PyJWTError as exc:
            raise _bad_assertion(f"Assertion is invalid: {exc}.") from exc
        if claims.get("idtyp") == "app" or not isinstance(claims.get("scp"), str):
            raise _bad_assertion(
                "The assertion is an app-only token; on-behalf-of needs a user's access token."
            )
        if claims.get("tid") != self.tenant_id or not isinstance(claims.get("oid"), str):
            raise _bad_assertion("The assertion names no user of this tenant.")
        return claims


def _bad_assertion(message: str) -> OAuthError:
    return OAuthError("invalid_grant", 50013, message)
