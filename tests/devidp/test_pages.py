"""What a person meets: sign-up with a one-time passcode, the session cookie, sign-out, and pages
that are safe to frame nowhere and load nothing from elsewhere."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from entra_ciam import AccessTokenValidator
from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, SignInError, running_devidp
from tests.devidp.helpers import ADA, REDIRECT_URI, TODO_READ, authorize_url, msal_app

NEW = ("grace@example.com", "Grace-Hopper-1906", "Grace Hopper")


def otp_over_http(idp: DevIdp):
    """The documented test-only route: GET /<tenant>/_test/otp?email=..."""

    def read(email: str) -> str | None:
        response = httpx.get(
            f"{idp.pages_url}/{defaults.TENANT_ID}/_test/otp", params={"email": email}
        )
        return response.json()["otp"] if response.status_code == 200 else None

    return read


def test_sign_up_with_a_passcode_then_sign_in_with_msal(devidp: DevIdp) -> None:
    web = msal_app(devidp, "web-app")
    flow = web.initiate_auth_code_flow(
        [TODO_READ], redirect_uri=REDIRECT_URI, response_mode="form_post"
    )
    with Browser() as browser:
        result = browser.sign_up(
            flow["auth_uri"],
            email=NEW[0],
            password=NEW[1],
            display_name=NEW[2],
            read_otp=otp_over_http(devidp),
        )
    tokens = web.acquire_token_by_auth_code_flow(flow, result.params)
    assert "access_token" in tokens, tokens.get("error_description")
    validator = AccessTokenValidator(
        authority=devidp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=devidp.ca_bundle
    )
    claims = validator.validate(tokens["access_token"])
    assert claims.name == NEW[2]
    assert claims.preferred_username == NEW[0]
    # The passcode went to the console, as it would to a mailbox.
    code = devidp.last_otp(NEW[0])
    assert code is not None and re.fullmatch(r"\d{8}", code)
    assert any(code in line and NEW[0] in line for line in devidp.console)

    # The new account signs in with its password from a fresh browser.
    with Browser() as browser:
        again = browser.sign_in(authorize_url(devidp), email=NEW[0], password=NEW[1])
    assert again.code


def test_signed_up_users_survive_a_restart(tmp_path: Path) -> None:
    with running_devidp(state_dir=str(tmp_path)) as idp, Browser() as browser:
        browser.sign_up(
            authorize_url(idp),
            email=NEW[0],
            password=NEW[1],
            display_name=NEW[2],
            read_otp=idp.last_otp,
        )
    with running_devidp(state_dir=str(tmp_path)) as idp, Browser() as browser:
        assert browser.sign_in(authorize_url(idp), email=NEW[0], password=NEW[1]).code
        with pytest.raises(SignInError):
            Browser().sign_in(authorize_url(idp), email=NEW[0], password="wrong-password")
    stored = (tmp_path / "users.json").read_text()
    assert NEW[1] not in stored and "scrypt" in stored


def test_wrong_passcodes_are_counted_and_existing_accounts_refused(devidp: DevIdp) -> None:
    with Browser() as browser:
        with pytest.raises(SignInError) as wrong:
            browser.sign_up(
                authorize_url(devidp),
                email=NEW[0],
                password=NEW[1],
                display_name=NEW[2],
                read_otp=lambda email: "00000000",  # wrong, but for a 1e-8 chance
            )
        assert wrong.value.status == 400
        assert "That code is wrong. 4 attempts left." in wrong.value.message

        with pytest.raises(SignInError) as taken:
            browser.sign_up(
                authorize_url(devidp),
                email=ADA[0],
                password=NEW[1],
                display_name="Someone",
                read_otp=devidp.last_otp,
            )
        assert taken.value.status == 409
        assert "already exists" in taken.value.message


def test_the_test_only_route_is_off_outside_test_mode() -> None:
    with running_devidp(test_mode=False) as idp, Browser() as browser:
        with pytest.raises(SignInError):  # no code was needed: stop after the passcode is sent
            browser.sign_up(
                authorize_url(idp),
                email=NEW[0],
                password=NEW[1],
                display_name=NEW[2],
                read_otp=lambda email: None,
            )
        response = httpx.get(
            f"{idp.pages_url}/{defaults.TENANT_ID}/_test/otp", params={"email": NEW[0]}
        )
        assert response.status_code == 404
        assert "otp" not in response.text.lower().replace("/_test/otp", "")
        assert idp.last_otp(NEW[0]) is not None  # the in-process handle still works


def test_pages_set_safe_headers_and_a_lax_httponly_cookie(devidp: DevIdp) -> None:
    with Browser() as browser:
        page = browser.client.get(authorize_url(devidp))
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "form-action 'self' http://localhost:3000" in csp
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce and f'nonce="{nonce.group(1)}"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        # Nothing is loaded from anywhere: no scripts, stylesheets, images or fonts by URL.
        assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page.text)
        assert "url(" not in page.text

        browser.sign_in(authorize_url(devidp), email=ADA[0], password=ADA[1])
        cookie = next(r.headers["set-cookie"] for r in browser.history if "set-cookie" in r.headers)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback


def test_sign_out_ends_the_session_and_returns_to_a_registered_address(devidp: DevIdp) -> None:
    logout = devidp.endpoints.end_session_endpoint
    with Browser() as browser:
        browser.sign_in(authorize_url(devidp), email=ADA[0], password=ADA[1])
        response = browser.client.get(
            logout,
            params={"post_logout_redirect_uri": "http://localhost:3000/", "state": "bye"},
        )
        assert response.status_code == 302
        assert response.headers["location"] == "http://localhost:3000/?state=bye"
        assert "Max-Age=0" in response.headers["set-cookie"]
        # Signed out: the next sign-in shows the page again instead of answering at once.
        assert browser.client.get(authorize_url(devidp)).status_code == 200

        refused = browser.client.get(
            logout, params={"post_logout_redirect_uri": "https://evil.example/"}
        )
        assert refused.status_code == 400
        assert "location" not in refused.headers
        assert "You signed out" in refused.text


def test_request_logs_hold_no_codes_or_tokens(
    devidp: DevIdp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="entra_ciam.devidp")
    web = msal_app(devidp, "web-app")
    flow = web.initiate_auth_code_flow(
        [TODO_READ], redirect_uri=REDIRECT_URI, response_mode="form_post"
    )
    with Browser() as browser:
        result = browser.sign_in(flow["auth_uri"], email=ADA[0], password=ADA[1])
        tokens = web.acquire_token_by_auth_code_flow(flow, result.params)
        browser.client.get(
            devidp.endpoints.end_session_endpoint, params={"id_token_hint": tokens["id_token"]}
        )
    logged = caplog.text
    assert "/oauth2/v2.0/token 200" in logged  # the log is there...
    for secret in (
        result.params["code"],
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        ADA[1],
        defaults.WEB_APP_CLIENT_SECRET,
        flow["state"],
    ):
        assert secret not in logged  # ...without what must stay secret


def test_index_page_names_the_authority(devidp: DevIdp) -> None:
    response = httpx.get(devidp.pages_url + "/")
    assert response.status_code == 200
    assert devidp.authority in response.text
    assert ADA[1] not in response.text  # passwords are printed on the console only


def test_an_odd_cookie_from_an_app_on_the_same_host_does_not_hide_the_session(
    devidp: DevIdp,
) -> None:
    with Browser() as browser:
        browser.sign_in(authorize_url(devidp), email=ADA[0], password=ADA[1])
        session = browser.client.cookies.get("devidp_session")
    assert session
    cookie = f'app_state="a,b\\"c{{}}"; devidp_session={session}; theme=dark'
    response = httpx.get(authorize_url(devidp), headers={"Cookie": cookie})
    assert response.status_code == 302  # signed straight back in
    assert "code=" in response.headers["location"]
