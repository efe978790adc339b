"""Microsoft Graph's ``/oidc/userinfo``: the signed-in user's claims for a Graph access token.

Entra's discovery names ``https://graph.microsoft.com/oidc/userinfo``; the emulator serves the same
answer on its https origin. The token must be a user's Graph token carrying the ``openid`` scope
(what a sign-in with OpenID scopes alone yields); ``profile`` adds the names, ``email`` the email.
Refusals are RFC 6750 challenges, as Graph answers them.
"""

from __future__ import annotations

import jwt

from entra_ciam.devidp import defaults
from entra_ciam.devidp.messages import Request, Response, json_response
from entra_ciam.devidp.provider import Provider

__all__ = ["userinfo"]

_GRAPH_AUDIENCES = (defaults.GRAPH_CLIENT_ID, defaults.GRAPH_IDENTIFIER_URI)


def userinfo(provider: Provider, request: Request) -> Response:
    if request.method not in ("GET", "POST", "HEAD"):
        return json_response({"error": "invalid_request"}, 405, [("Allow", "GET, POST")])
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge(401, None, "send the access token as 'Authorization: Bearer <token>'")
    try:
        claims = provider.minter.decode_own(token.strip(), _GRAPH_AUDIENCES)
    except jwt.ExpiredSignatureError:
        return _challenge(401, "invalid_token", "the access token has expired")
    except jwt.InvalidAudienceError:
        return _challenge(
            401,
            "invalid_token",
            "the access token is not for Microsoft Graph; sign in with scope 'openid' "
            "(and profile, email) to get one",
        )
    except jwt.PyJWTError:
        return _challenge(401, "invalid_token", "the access token is not valid")
    scopes = str(claims.get("scp", "")).split()
    oid = claims.get("oid")
    user = provider.directory.by_oid(oid) if isinstance(oid, str) else None
    if "openid" not in scopes or user is None:
        return _challenge(
            403, "insufficient_scope", "userinfo needs a user's token with the openid scope"
        )
    client = claims.get("azp") or claims.get("appid")
    # The same pairwise sub as the ID token this client received.
    sub = provider.minter.pairwise_sub(user.oid, str(client))
    body: dict[str, str] = {"sub": sub}
    if "profile" in scopes:
        given, _, family = user.display_name.partition(" ")
        body.update({"name": user.display_name, "given_name": given, "family_name": family})
    if "email" in scopes:
        body["email"] = user.email
    return json_response(body)


def _challenge(status: int, error: str | None, description: str) -> Response:
    value = 'Bearer realm="graph.microsoft.com"'
    if error is not None:
        value += f', error="{error}", error_description="{description}"'
    body = {"error": error or "unauthorized", "error_description": description}
    return json_response(body, status, [("WWW-Authenticate", value)])
