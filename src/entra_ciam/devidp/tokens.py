"""Mint id tokens and access tokens with the claims Entra External ID puts in them.

Signed RS256 with the current key and only ``kid``/``typ``/``alg`` in the header. ``sub`` is
pairwise: the same user gets a different ``sub`` in each app, while ``oid`` stays the same.
Access tokens are v2.0 unless the API's registration asks for v1.0 (``access_token_version = 1``,
what a manifest left unset gives): then ``iss`` is ``https://sts.windows.net/<tenant-id>/``,
``ver`` is "1.0" and ``appid``/``appidacr`` replace ``azp``/``azpacr``. Optional claims (``idtyp``,
``login_hint``) appear only when the registration asks for them, as in Entra.
"""

from __future__ import annotations

import base64
import binascii
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


_LOGIN_HINT_PREFIX = "O."


class TokenMinter:
    def __init__(
        self,
        *,
        issuer: str,
        tenant_id: str,
        keys: KeyStore,
        clock: Callable[[], float],
        v1_issuer: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.v1_issuer = v1_issuer or f"https://sts.windows.net/{tenant_id}/"
        self.tenant_id = tenant_id
        self.keys = keys
        self.clock = clock

    # -- claims -----------------------------------------------------------------------------

    def pairwise_sub(self, oid: str, app_client_id: str) -> str:
        digest = hmac.new(
            self.tenant_id.encode(), f"{app_client_id}:{oid}".encode(), hashlib.sha256
        )
        return _b64url(digest.digest())

    def _base(self, audience: str, lifetime: int, *, issuer: str | None = None) -> dict[str, Any]:
        now = int(self.clock())
        return {
            "aud": audience,
            "iss": issuer or self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": _opaque(24),
        }

    def _access_base(
        self, resource: AppRegistration, client: AppRegistration, lifetime: int
    ) -> dict[str, Any]:
        """What every access token for ``resource`` carries, in the version its manifest asks."""
        if resource.access_token_version == 1:
            audience = resource.identifier_uris[0] if resource.identifier_uris else None
            claims = self._base(audience or resource.client_id, lifetime, issuer=self.v1_issuer)
            claims.update(
                {
                    "appid": client.client_id,
                    "appidacr": "1" if client.is_confidential else "0",
                    "ver": "1.0",
                }
            )
        else:
            claims = self._base(resource.client_id, lifetime)
            claims.update(
                {
                    "azp": client.client_id,
                    "azpacr": "1" if client.is_confidential else "0",
                    "ver": "2.0",
                }
            )
        claims.update({"rh": _opaque(), "tid": self.tenant_id, "uti": _opaque()})
        return claims

    def user_access_token(
        self,
        *,
        user: User,
        client: AppRegistration,
        grant: DelegatedGrant,
        sid: str,
        lifetime: int,
    ) -> str:
        resource = grant.resource
        claims = self._access_base(resource, client, lifetime)
        claims.update(
            {
                "name": user.display_name,
                "oid": user.oid,
                "scp": " ".join(grant.scopes),
                "sid": sid,
                "sub": self.pairwise_sub(user.oid, resource.client_id),
            }
        )
        if resource.access_token_version == 1:
            claims.update({"amr": ["pwd"], "unique_name": user.email})
        else:
            claims["preferred_username"] = user.email
        if resource.wants("access_token", "idtyp"):
            claims["idtyp"] = "user"
        return self.sign(claims)

    def app_access_token(
        self,
        *,
        client: AppRegistration,
        resource: AppRegistration,
        roles: Sequence[str],
        lifetime: int,
    ) -> str:
        claims = self._access_base(resource, client, lifetime)
        claims.update(
            {
                "oid": client.service_principal_id,
                "roles": list(roles),
                "sub": client.service_principal_id,
            }
        )
        if resource.access_token_version == 1:
            claims["idp"] = self.v1_issuer
        if resource.wants("access_token", "idtyp"):
            claims["idtyp"] = "app"
        return self.sign(claims)

    def login_hint(self, user: User) -> str:
        """The ``login_hint`` optional claim: opaque to apps, names the account to the tenant."""
        payload = json.dumps({"oid": user.oid, "tid": self.tenant_id}, separators=(",", ":"))
        return _LOGIN_HINT_PREFIX + _b64url(payload.encode())

    def oid_from_login_hint(self, hint: str) -> str | None:
        """The account a ``login_hint`` claim value (sent back as a hint) names, or None."""
        if not hint.startswith(_LOGIN_HINT_PREFIX):
            return None
        raw = hint.removeprefix(_LOGIN_HINT_PREFIX)
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or data.get("tid") != self.tenant_id:
            return None
        oid = data.get("oid")
        return oid if isinstance(oid, str) else None

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
        if client.wants("id_token", "login_hint"):
            claims["login_hint"] = self.login_hint(user)
        return self.sign(claims)

    def client_info(self, user: User) -> str:
        """What MSAL reads to name the account: ``{"uid": oid, "utid": tenant id}``."""
        return _b64url(json.dumps({"uid": user.oid, "utid": self.tenant_id}).encode())

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.current
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

    # -- reading our own tokens (on-behalf-of assertions) -------------------------------------

    def decode_own(self, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        """The claims of a token this tenant signed for one of ``audiences``, v2.0 or v1.0.

        Raises ``jwt.PyJWTError``: ``InvalidSignatureError`` for a key or algorithm that is not
        ours, ``ExpiredSignatureError``, ``InvalidAudienceError``, ``DecodeError``...
        """
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = self.keys.find(kid) if isinstance(kid, str) else None
        if header.get("alg") != "RS256" or key is None:
            raise jwt.InvalidSignatureError("not signed by one of this tenant's keys")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=list(audiences),
            issuer=[self.issuer, self.v1_issuer],
            options={"require": ["exp", "nbf", "iat", "aud", "iss"]},
            leeway=0,
        )
        return claims

    def verify_user_assertion(self, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        """Check a user access token we issued; raise Entra's assertion errors otherwise."""
        try:
            claims = self.decode_own(token, audiences)
        except jwt.InvalidSignatureError as exc:
            raise _bad_assertion("Assertion failed signature validation.") from exc
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
        except jwt.DecodeError as exc:
            raise _bad_assertion("The assertion is not a well-formed JWT.") from exc
        except jwt.PyJWTError as exc:
            raise _bad_assertion(f"Assertion is invalid: {exc}.") from exc
        if claims.get("idtyp") == "app" or not isinstance(claims.get("scp"), str):
            # App-only tokens carry roles and no scp (idtyp only when the API asks for it).
            raise _bad_assertion(
                "The assertion is an app-only token; on-behalf-of needs a user's access token."
            )
        if claims.get("tid") != self.tenant_id or not isinstance(claims.get("oid"), str):
            raise _bad_assertion("The assertion names no user of this tenant.")
        return claims


def _bad_assertion(message: str) -> OAuthError:
    return OAuthError("invalid_grant", 50013, message)
