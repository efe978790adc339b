"""Redirect URIs without a path, as Entra treats them: ``https://app.example.com`` and
``https://app.example.com/`` are one URI, and the browser is sent to the one with ``/``.

Microsoft's "Redirect URI restrictions": for the query and fragment response modes a trailing
slash is appended to a path-less redirect URI in the response. Microsoft's Node sample registers
``http://localhost:3000`` and sends it bare as ``post_logout_redirect_uri``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from tests.devidp.helpers import ADA, assert_entra_error, authorize_url, pkce_pair, tls

BARE = "https://app.example.com"  # not loopback: matched exactly, but for the empty path


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp(extra_redirect_uris=[BARE]) as running:
        yield running


def _redeem(idp: DevIdp, code: str, verifier: str, redirect_uri: str) -> httpx.Response:
    return httpx.post(
        idp.endpoints.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "client_id": defaults.WEB_APP_CLIENT_ID,
            "client_secret": defaults.WEB_APP_CLIENT_SECRET,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        verify=tls(idp),
    )


@pytest.mark.parametrize("mode", ["query", "fragment", "form_post"])
@pytest.mark.parametrize(("sent", "redeemed"), [(BARE, f"{BARE}/"), (f"{BARE}/", BARE)])
def test_a_path_less_redirect_uri_is_answered_at_its_slash(
    idp: DevIdp, mode: str, sent: str, redeemed: str
) -> None:
    verifier, challenge = pkce_pair()
    url = authorize_url(idp, redirect_uri=sent, response_mode=mode, code_challenge=challenge)
    with Browser() as browser:
        result = browser.sign_in(url, email=ADA[0], password=ADA[1])
    assert result.response_mode == mode
    assert result.redirect_uri == f"{BARE}/"
    assert result.code and result.state == "state-123"
    # The token endpoint takes either spelling: it is the same URI.
    assert _redeem(idp, result.code, verifier, redeemed).status_code == 200


def test_errors_go_to_the_slash_too_and_other_paths_still_differ(idp: DevIdp) -> None:
    refused = httpx.get(authorize_url(idp, redirect_uri=BARE, prompt="none"))
    assert refused.status_code == 302
    assert refused.headers["location"].startswith(f"{BARE}/?error=login_required")
    other = httpx.get(authorize_url(idp, redirect_uri=f"{BARE}/other"))
    assert other.status_code == 400 and "AADSTS50011" in other.text  # shown, not redirected

    verifier, challenge = pkce_pair()
    with Browser() as browser:
        code = browser.sign_in(
            authorize_url(idp, redirect_uri=BARE, code_challenge=challenge),
            email=ADA[0],
            password=ADA[1],
        ).code
    assert code
    wrong = _redeem(idp, code, verifier, f"{BARE}/other")
    assert_entra_error(wrong, 400, "invalid_grant", 500112)


def test_a_path_less_post_logout_uri_returns_to_its_slash(idp: DevIdp) -> None:
    """The built-in web app lists ``http://localhost:3000/``; the Node sample sends it bare."""
    assert "http://localhost:3000/" in idp.app("web-app").post_logout_redirect_uris
    logout = idp.endpoints.end_session_endpoint
    with Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        out = browser.sign_out(f"{logout}?post_logout_redirect_uri=http://localhost:3000&state=s")
    assert out.status_code == 302
    assert out.headers["location"] == "http://localhost:3000/?state=s"
    bare = httpx.get(f"{logout}?post_logout_redirect_uri={BARE}")
    assert bare.status_code == 302 and bare.headers["location"] == f"{BARE}/"
