"""Mint Entra-shaped v2 access tokens with keys of our own, for tests and benchmarks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TENANT_ID = "7d3e1c2a-5b4f-4a8e-9c6d-1f2e3d4c5b6a"
API_CLIENT_ID = "4f6a2b1c-8d3e-4c5f-9a7b-2e1d0c9b8a7f"
WEB_CLIENT_ID = "9b8a7f6e-5d4c-4b3a-8f2e-1d0c9b8a7f6e"
USER_OID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
APP_OID = "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"  # the daemon's service principal


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    """An RSA key with its kid and public JWK."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        pub = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _int_b64(pub.n),
            "e": _int_b64(pub.e),
        }

    def sign(self, signing_input: bytes) -> bytes:
        return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


class TokenFactory:
    """Issues tokens the way an Entra External ID tenant would, from ``issuer``."""

    def __init__(
        self,
        issuer: str = f"https://{TENANT_ID}.ciamlogin.com/{TENANT_ID}/v2.0",
        *,
        tenant_id: str = TENANT_ID,
        audience: str = API_CLIENT_ID,
        key: SigningKey | None = None,
    ) -> None:
        self.issuer = issuer
        self.tenant_id = tenant_id
        self.audience = audience
        self.key = key or SigningKey()

    def jwks(self, *extra: SigningKey) -> dict[str, Any]:
        return {"keys": [self.key.jwk(), *(k.jwk() for k in extra)]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "azp": WEB_CLIENT_ID,
            "azpacr": "1",
            "name": "Ada Lovelace",
            "oid": USER_OID,
            "preferred_username": "ada@example.com",
            "scp": "Todolist.Read Todolist.ReadWrite",
            "sub": "pairwise-" + USER_OID[:8],
            "tid": self.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def app_claims(self, roles: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
        # In an app-only token both sub and oid are the calling app's service principal id.
        base = self.claims(
            scp=None,
            name=None,
            preferred_username=None,
            roles=roles if roles is not None else ["Todolist.Read.All"],
            idtyp="app",
            oid=APP_OID,
            sub=APP_OID,
        )
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def header(self, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "kid": self.key.kid}
        header.update(overrides)
        return {k: v for k, v in header.items() if v is not None}

    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        header: dict[str, Any] | None = None,
        key: SigningKey | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A signed compact JWS. ``claims=None`` means the default user token with overrides."""
        body = claims if claims is not None else self.claims(**claim_overrides)
        signer = key or self.key
        head = header if header is not None else self.header(kid=signer.kid)
        signing_input = f"{b64url_json(head)}.{b64url_json(body)}".encode()
        return f"{signing_input.decode()}.{b64url(signer.sign(signing_input))}"

    def discovery(self, base_url: str, jwks_uri: str) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "authorization_endpoint": f"{base_url}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base_url}/oauth2/v2.0/token",
            "end_session_endpoint": f"{base_url}/oauth2/v2.0/logout",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }
