"""Real access tokens from the emulator, got through the grants real clients use."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import msal

from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import sign_in
from entra_ciam.http import MsalHttpClient

__all__ = ["app_token", "app_token_response", "user_token"]


def user_token(idp: DevIdp, email: str, password: str, scope: str = "Todolist.Read") -> str:
    """A delegated token, got the way the web app gets it: auth code flow on the emulator."""
    config = idp.entra_config("web-app")
    app = msal.ConfidentialClientApplication(
        config.client_id,
        client_credential=config.client_secret,
        oidc_authority=config.oidc_authority,
        http_client=MsalHttpClient(config.verify),
    )
    flow = app.initiate_auth_code_flow(
        [f"api://{config.api_client_id}/{scope}"],
        redirect_uri=config.redirect_uri,
        response_mode="form_post",
    )
    result = sign_in(flow["auth_uri"], email=email, password=password)
    tokens = app.acquire_token_by_auth_code_flow(flow, result.params)
    assert "access_token" in tokens, tokens.get("error_description")
    return str(tokens["access_token"])


def app_token_response(idp: DevIdp) -> dict[str, Any]:
    """The token endpoint's whole answer to the built-in daemon's client credentials request for
    the todo API, sent as MSAL's ``acquire_token_for_client`` sends it."""
    response = httpx.post(
        idp.endpoints.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": defaults.DAEMON_CLIENT_ID,
            "client_secret": defaults.DAEMON_CLIENT_SECRET,
            "scope": f"{defaults.TODO_API_IDENTIFIER_URI}/.default",
        },
        verify=ssl.create_default_context(cafile=idp.ca_bundle),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def app_token(idp: DevIdp) -> str:
    """An app-only token of the built-in daemon for the todo API (:func:`app_token_response`)."""
    return str(app_token_response(idp)["access_token"])
