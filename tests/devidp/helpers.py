"""Small helpers shared by the emulator's tests: MSAL apps, PKCE pairs, token decoding."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
from typing import Any
from urllib.parse import urlencode

import httpx
import msal

from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser
from entra_ciam.http import MsalHttpClient

TODO_READ = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.Read"
TODO_WRITE = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.ReadWrite"
TODO_DEFAULT = f"{defaults.TODO_API_IDENTIFIER_URI}/.default"
REDIRECT_URI = "http://localhost:3000/auth/redirect"
# Entra's issuer form, which the emulator issues by default: the tenant id as the host.
ISSUER = f"https://{defaults.TENANT_ID}.ciamlogin.com/{defaults.TENANT_ID}/v2.0"
ADA = ("ada@example.com", "Ada-Lovelace-1815")


def msal_app(idp: DevIdp, name: str, **kwargs: Any) -> msal.ConfidentialClientApplication:
    """An unmodified MSAL confidential client for one registration, trusting the local CA."""
    app = idp.app(name)
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.client_secret,
        oidc_authority=idp.oidc_authority,
        http_client=MsalHttpClient(verify=idp.ca_bundle),
        **kwargs,
    )


def tls(idp: DevIdp) -> ssl.SSLContext:
    """What httpx takes as ``verify`` to trust the emulator's local CA."""
    return ssl.create_default_context(cafile=idp.ca_bundle)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(idp: DevIdp, **overrides: str | None) -> str:
    """A hand-built /authorize URL for the web app; None removes a parameter."""
    params: dict[str, str | None] = {
        "client_id": defaults.WEB_APP_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid profile offline_access {TODO_READ}",
        "state": "state-123",
        "nonce": "nonce-456",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{idp.endpoints.authorization_endpoint}?{query}"


def redeem_code(idp: DevIdp, scope: str) -> dict[str, Any]:
    """Sign Ada in for ``scope`` and redeem the code by hand (PKCE, the web app's secret): the
    token endpoint's whole answer, without MSAL adding or checking anything."""
    verifier, challenge = pkce_pair()
    url = authorize_url(idp, scope=scope, code_challenge=challenge)
    with Browser() as browser:
        code = browser.sign_in(url, email=ADA[0], password=ADA[1]).code
    response = httpx.post(
        idp.endpoints.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "client_id": defaults.WEB_APP_CLIENT_ID,
            "client_secret": defaults.WEB_APP_CLIENT_SECRET,
            "code": str(code),
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        verify=tls(idp),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_entra_error(
    response: httpx.Response, status: int, error: str, code: int, suberror: str | None = None
) -> None:
    """The token endpoint's refusal in Entra's JSON shape; ``suberror`` only where Entra sends
    one (MSAL decides on it whether only a new sign-in helps)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nCorrelation ID: " in body["error_description"]
    for field in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert body[field]
    assert body.get("suberror") == suberror
