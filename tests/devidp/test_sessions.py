"""Single sign-on and sign-out as Entra does them (issue 12, point 3).

One browser may hold several signed-in accounts. ``prompt=select_account`` shows the account
picker and keeps SSO; only ``prompt=login`` asks for the password again. Sign-out accepts any of
the app's redirect URIs as ``post_logout_redirect_uri``, takes ``logout_hint`` (the ID token's
``login_hint`` claim) to sign one account out, tells apps through their front-channel logout URL,
and afterwards ``prompt=none`` answers ``login_required``.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest

from entra_ciam.devidp import defaults
from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp, sign_in
from tests.devidp.helpers import ADA, REDIRECT_URI, authorize_url, claims, pkce_pair, tls

ALAN = ("alan@example.com", "Alan-Turing-1912")
WEB = (defaults.WEB_APP_CLIENT_ID, defaults.WEB_APP_CLIENT_SECRET)


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def logout_url(idp: DevIdp, **params: str) -> str:
    return f"{idp.endpoints.end_session_endpoint}?{urlencode(params)}"


def id_token_of(idp: DevIdp, browser: Browser, **authorize: str) -> dict[str, str]:
    """Sign in (or SSO) through ``browser`` with a fresh PKCE pair; return the ID token claims."""
    verifier, challenge = pkce_pair()
    url = authorize_url(idp, code_challenge=challenge, **authorize)
    response = browser.client.get(url)
    location = response.headers.get("location", "")
    assert response.status_code == 302 and "code=" in location, response.text[:300]
    code = httpx.QueryParams(location.split("?", 1)[1])["code"]
    tokens = httpx.post(
        idp.endpoints.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "client_id": WEB[0],
            "client_secret": WEB[1],
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        verify=tls(idp),
    ).json()
    return claims(tokens["id_token"])


def test_select_account_shows_the_picker_and_keeps_single_sign_on(idp: DevIdp) -> None:
    with Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        picker = browser.client.get(authorize_url(idp, prompt="select_account"))
        assert picker.status_code == 200 and "Pick an account" in picker.text
        assert ADA[0] in picker.text and "Use another account" in picker.text
        chosen = browser.pick_account(authorize_url(idp, prompt="select_account"), ADA[0])
        assert chosen.code and chosen.state == "state-123"  # no password asked

        forced = browser.client.get(authorize_url(idp, prompt="login"))
        assert forced.status_code == 200 and "Pick an account" not in forced.text
        assert 'name="email"' in forced.text  # prompt=login asks for the credentials again


def test_two_accounts_in_one_browser_and_logout_hint_signs_out_one(idp: DevIdp) -> None:
    with Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        ada = id_token_of(idp, browser)
        browser.sign_in(authorize_url(idp, prompt="login"), email=ALAN[0], password=ALAN[1])
        alan = id_token_of(idp, browser, login_hint=ALAN[0])
        assert ada["login_hint"] != alan["login_hint"]

        # Two accounts and no hint: Entra asks which; prompt=none cannot.
        picker = browser.client.get(authorize_url(idp))
        assert picker.status_code == 200 and ADA[0] in picker.text and ALAN[0] in picker.text
        silent = browser.client.get(authorize_url(idp, prompt="none"))
        assert "error=interaction_required" in silent.headers["location"]
        # The login_hint claim works as login_hint too.
        assert id_token_of(idp, browser, login_hint=ada["login_hint"])["oid"] == ada["oid"]

        out = browser.sign_out(
            logout_url(idp, logout_hint=ada["login_hint"], post_logout_redirect_uri=REDIRECT_URI)
        )
        assert out.status_code == 302 and out.headers["location"] == REDIRECT_URI
        assert "set-cookie" not in out.headers  # Alan is still signed in here
        assert id_token_of(idp, browser, prompt="none")["oid"] == alan["oid"]
        picker = browser.client.get(authorize_url(idp, prompt="select_account"))
        assert ALAN[0] in picker.text and ADA[0] not in picker.text

        browser.sign_out(logout_url(idp))  # no hint: every account of this browser
        silent = browser.client.get(authorize_url(idp, prompt="none"))
        assert "error=login_required" in silent.headers["location"]


def test_any_redirect_uri_is_a_valid_post_logout_redirect_uri(idp: DevIdp) -> None:
    """REDIRECT_URI is a redirect URI of the web app, not in its post-logout list."""
    assert REDIRECT_URI not in idp.app("web-app").post_logout_redirect_uris
    with Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        out = browser.sign_out(
            logout_url(idp, post_logout_redirect_uri=REDIRECT_URI, client_id=WEB[0], state="after")
        )
        assert out.status_code == 302
        assert out.headers["location"] == f"{REDIRECT_URI}?state=after"
        assert "Max-Age=0" in out.headers["set-cookie"]
        refused = browser.sign_out(
            logout_url(idp, post_logout_redirect_uri="https://evil.example/", client_id=WEB[0])
        )
        assert refused.status_code == 400 and "evil.example" in refused.text


def test_strict_logout_accepts_only_the_listed_post_logout_uris() -> None:
    mapping = default_mapping()
    mapping["strict"] = {"post_logout_uris_listed_only": True}
    with running_devidp(Registrations.from_mapping(mapping)) as idp, Browser() as browser:
        listed = idp.app("web-app").post_logout_redirect_uris[0]
        assert browser.sign_out(logout_url(idp, post_logout_redirect_uri=listed)).status_code == 302
        refused = browser.sign_out(logout_url(idp, post_logout_redirect_uri=REDIRECT_URI))
        assert refused.status_code == 400 and "post-logout redirect URIs" in refused.text


def test_front_channel_logout_loads_the_apps_logout_url() -> None:
    mapping = default_mapping()
    mapping["apps"][0]["frontchannel_logout_url"] = "http://localhost:3000/auth/frontchannel"
    with running_devidp(Registrations.from_mapping(mapping)) as idp, Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        home = "http://localhost:3000/"
        page = browser.sign_out(logout_url(idp, post_logout_redirect_uri=home))
        assert page.status_code == 200
        assert '<iframe src="http://localhost:3000/auth/frontchannel"' in page.text
        assert f'href="{home}"' in page.text  # then on to the app
        assert "frame-src http://localhost:3000" in page.headers["content-security-policy"]
        # The session is over: nothing left to tell the next time.
        again = browser.sign_out(logout_url(idp, post_logout_redirect_uri=home))
        assert again.status_code == 302


def test_fragment_response_mode(idp: DevIdp) -> None:
    with Browser() as browser:
        result = browser.client.get(authorize_url(idp, response_mode="fragment"))
        assert result.status_code == 200  # the sign-in page first
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        answer = browser.client.get(authorize_url(idp, response_mode="fragment"))
    location = answer.headers["location"]
    assert location.startswith(f"{REDIRECT_URI}#code=") and "state=state-123" in location
    error = httpx.get(authorize_url(idp, response_mode="fragment", prompt="none"))
    assert error.headers["location"].startswith(f"{REDIRECT_URI}#error=login_required")


def test_the_test_browser_reads_a_fragment_response(idp: DevIdp) -> None:
    """``Browser.sign_in`` with ``response_mode=fragment``: the parameters come from the
    fragment, and ``url`` is the redirect the browser follows, fragment and all."""
    with Browser() as browser:
        result = browser.sign_in(
            authorize_url(idp, response_mode="fragment"), email=ADA[0], password=ADA[1]
        )
        location = browser.history[-1].headers["location"]
    assert result.response_mode == "fragment"
    assert result.redirect_uri == REDIRECT_URI
    assert set(result.params) == {"code", "state", "session_state"}
    assert result.code and result.state == "state-123"
    assert result.url == location and "?" not in result.url
    refused = sign_in(
        authorize_url(idp, response_mode="fragment", prompt="none"), email="-", password="-"
    )
    assert refused.response_mode == "fragment" and refused.error == "login_required"


def test_login_hint_prefills_the_email(idp: DevIdp) -> None:
    page = httpx.get(authorize_url(idp, login_hint=ALAN[0]))
    assert f'value="{ALAN[0]}"' in page.text
    assert quote(ALAN[0]) not in page.headers.get("location", "")


def test_prompt_consent_keeps_single_sign_on(idp: DevIdp) -> None:
    with Browser() as browser:
        browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        answer = browser.client.get(authorize_url(idp, prompt="consent"))
    assert answer.status_code == 302 and "code=" in answer.headers["location"]
