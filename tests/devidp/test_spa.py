"""Single-page apps (``spa = true``) as Entra serves them: from a browser, across origins.

Discovery and keys may be read by any page; the token endpoint answers a SPA's cross-origin
redemption (and a CORS preflight), insists that SPA tokens be redeemed that way (AADSTS9002327)
and refuses cross-origin redemption by any other client (AADSTS9002326). A SPA's refresh tokens
live 24 hours from the sign-in, and refreshing does not extend them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from entra_ciam.devidp import defaults
from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from tests.devidp.helpers import (
    ADA,
    REDIRECT_URI,
    TODO_READ,
    assert_entra_error,
    authorize_url,
    pkce_pair,
    tls,
)

SPA_ID = "5a5a5a5a-1111-4222-8333-444455556666"
SPA_REDIRECT = "http://localhost:5173/"
SPA_ORIGIN = "http://localhost:5173"
DAY = 24 * 3600


@pytest.fixture
def idp() -> Iterator[DevIdp]:
    """Per test: some advance the emulator's clock."""
    mapping = default_mapping()
    mapping["apps"].append(
        {
            "name": "spa",
            "client_id": SPA_ID,
            "spa": True,
            "redirect_uris": [SPA_REDIRECT],
            "delegated_permissions": {"todo-api": ["Todolist.Read"]},
        }
    )
    with running_devidp(Registrations.from_mapping(mapping)) as running:
        yield running


def token(idp: DevIdp, origin: str | None = None, **form: str) -> httpx.Response:
    headers = {"Origin": origin} if origin else {}
    return httpx.post(idp.endpoints.token_endpoint, data=form, headers=headers, verify=tls(idp))


def spa_code(idp: DevIdp) -> tuple[str, str]:
    """Sign Ada in to the SPA as msal-browser does (PKCE, fragment); return (code, verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(
        idp,
        client_id=SPA_ID,
        redirect_uri=SPA_REDIRECT,
        scope=f"openid offline_access {TODO_READ}",
        response_mode="fragment",
        code_challenge=challenge,
    )
    with Browser() as browser:
        result = browser.sign_in(url, email=ADA[0], password=ADA[1])
    assert result.code, result.params
    return result.code, verifier


WEB_APP = {"client_id": defaults.WEB_APP_CLIENT_ID, "client_secret": defaults.WEB_APP_CLIENT_SECRET}


def web_app_redemption(idp: DevIdp) -> dict[str, str]:
    """Sign Ada in to the built-in web app; the token request's fields that redeem her code."""
    verifier, challenge = pkce_pair()
    with Browser() as browser:
        code = browser.sign_in(
            authorize_url(idp, code_challenge=challenge), email=ADA[0], password=ADA[1]
        ).code
    assert code
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **WEB_APP,
    }


def spa_redeem(idp: DevIdp, origin: str | None = SPA_ORIGIN) -> httpx.Response:
    code, verifier = spa_code(idp)
    return token(
        idp,
        origin,
        grant_type="authorization_code",
        client_id=SPA_ID,
        code=code,
        redirect_uri=SPA_REDIRECT,
        code_verifier=verifier,
    )


def spa_refresh(idp: DevIdp, refresh_token: str, origin: str | None = SPA_ORIGIN) -> httpx.Response:
    return token(
        idp, origin, grant_type="refresh_token", client_id=SPA_ID, refresh_token=refresh_token
    )


def test_discovery_and_keys_may_be_read_by_any_page(idp: DevIdp) -> None:
    with httpx.Client(verify=tls(idp), headers={"Origin": SPA_ORIGIN}) as client:
        for url in (
            idp.metadata_url,
            idp.metadata_url.replace("/v2.0/.well-known/", "/.well-known/"),
            idp.endpoints.jwks_uri,
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["access-control-allow-origin"] == "*", url


def test_the_token_endpoint_answers_a_cors_preflight(idp: DevIdp) -> None:
    preflight = httpx.request(
        "OPTIONS",
        idp.endpoints.token_endpoint,
        headers={
            "Origin": SPA_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,client-request-id",
        },
        verify=tls(idp),
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "content-type,client-request-id"
    assert int(preflight.headers["access-control-max-age"]) > 0


def test_a_spa_redeems_its_code_cross_origin(idp: DevIdp) -> None:
    response = spa_redeem(idp)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SPA_ORIGIN
    body = response.json()
    assert body["access_token"] and body["id_token"] and body["refresh_token"]
    assert body["refresh_token_expires_in"] == DAY  # told to SPAs only, as Entra does
    refreshed = spa_refresh(idp, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["access-control-allow-origin"] == SPA_ORIGIN


def test_spa_tokens_are_redeemed_only_cross_origin(idp: DevIdp) -> None:
    assert_entra_error(spa_redeem(idp, origin=None), 400, "invalid_request", 9002327)
    refresh_token = spa_redeem(idp).json()["refresh_token"]
    same_origin = spa_refresh(idp, refresh_token, origin=None)
    assert_entra_error(same_origin, 400, "invalid_request", 9002327)


def test_other_clients_may_not_redeem_cross_origin(idp: DevIdp) -> None:
    redeem = web_app_redemption(idp)
    cross = token(idp, "http://localhost:3000", **redeem)
    assert_entra_error(cross, 400, "invalid_request", 9002326)
    assert "Request origin: 'http://localhost:3000'" in cross.json()["error_description"]
    # The browser may read the refusal, so the developer sees why.
    assert cross.headers["access-control-allow-origin"] == "http://localhost:3000"
    daemon = token(
        idp,
        SPA_ORIGIN,
        grant_type="client_credentials",
        client_id=defaults.DAEMON_CLIENT_ID,
        client_secret=defaults.DAEMON_CLIENT_SECRET,
        scope=f"{defaults.TODO_API_IDENTIFIER_URI}/.default",
    )
    assert_entra_error(daemon, 400, "invalid_request", 9002326)
    # The refused request did not consume the code: from the server it still works.
    same_origin = token(idp, **redeem)
    assert same_origin.status_code == 200, same_origin.text
    assert "refresh_token_expires_in" not in same_origin.json()
    assert "access-control-allow-origin" not in same_origin.headers


def test_a_spa_refresh_token_lives_a_day_from_the_sign_in(idp: DevIdp) -> None:
    first = spa_redeem(idp).json()["refresh_token"]
    idp.clock.advance(DAY - 3600)
    later = spa_refresh(idp, first)
    assert later.status_code == 200, later.text
    # The new refresh token keeps the first one's expiry: an hour left, not another day.
    assert 3600 - 60 < later.json()["refresh_token_expires_in"] <= 3600
    idp.clock.advance(3601)
    expired = spa_refresh(idp, later.json()["refresh_token"])
    assert_entra_error(expired, 400, "invalid_grant", 700082, "bad_token")


def test_a_web_apps_refresh_token_outlives_a_day(idp: DevIdp) -> None:
    redeemed = token(idp, **web_app_redemption(idp))
    idp.clock.advance(DAY + 1)
    later = token(
        idp, grant_type="refresh_token", refresh_token=redeemed.json()["refresh_token"], **WEB_APP
    )
    assert later.status_code == 200, later.text
