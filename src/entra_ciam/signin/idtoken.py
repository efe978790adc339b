"""Checks on the ID token a sign-in returns (OpenID Connect Core 3.1.3.7).

MSAL checks the nonce but, since 1.38, nothing else: the application must. The token comes
straight from the token endpoint over TLS, which the specification accepts in place of checking
its signature, so what is left is who issued it, for whom, for which tenant and when.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from entra_ciam.errors import EntraCiamError

__all__ = ["IdTokenError", "check_id_token_claims"]

LEEWAY = 120  # seconds of clock skew tolerated, as MSAL did


class IdTokenError(EntraCiamError, ValueError):
    """The ID token is not for this app, this tenant or this time; the message says which."""


def check_id_token_claims(
    claims: Mapping[str, Any],
    *,
    client_id: str,
    issuer: str | None,
    tenant_id: str | None,
    now: float | None = None,
    leeway: int = LEEWAY,
) -> None:
    """Raise IdTokenError unless ``claims`` name this app, issuer and tenant and are current."""
    if not claims:
        raise IdTokenError("the sign-in returned no ID token")
    if issuer is not None and claims.get("iss") != issuer:
        raise IdTokenError("the ID token was issued by another authority")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if client_id not in audiences:
        raise IdTokenError("the ID token was issued to another application")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("the ID token names several audiences but not this app as azp")
    if tenant_id is not None and "tid" in claims and str(claims["tid"]).lower() != tenant_id:
        raise IdTokenError("the ID token comes from another tenant")
    if not (claims.get("sub") or claims.get("oid")):
        raise IdTokenError("the ID token names no user (no sub or oid)")
    current = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or current - leeway >= exp:
        raise IdTokenError("the ID token has expired or carries no expiry")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and current + leeway < nbf:
        raise IdTokenError("the ID token is not valid yet")
