"""Clients nobody here wrote, against the emulator and the todo API over real HTTP (issue 12.7).

- Authlib's Flask OpenID Connect client: discovery, auth code with PKCE, and ID-token validation
  with Authlib's own JOSE code (issuer, audience, nonce, signature from the JWKS).
- Microsoft's ``identity`` package (Flask): sign in, call the todo API with the user's token, and
  sign out at the emulator, configured with ``OIDC_AUTHORITY`` and with ``AUTHORITY`` (for which it
  reads ``end_session_endpoint`` from discovery without ``/v2.0``). It sends
  ``prompt=select_account``: the emulator's account picker keeps single sign-on.

Both use ``requests``, so they trust the emulator's CA through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.starlette_api.app import create_app
from flask import Flask, jsonify, request, session

from entra_ciam import AccessTokenValidator
from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from tests.devidp.helpers import ISSUER
from tests.support.todo_api import serving
from tests.support.webapps import LateWSGI, serving_wsgi

ADA = defaults.USERS[0]
READ = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.Read"


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


@pytest.fixture(scope="module")
def todo_api(idp: DevIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    validator = AccessTokenValidator(
        authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
    )
    db = tmp_path_factory.mktemp("todo") / "todo.sqlite3"
    with serving(create_app(validator=validator, db_path=db)) as base:
        yield base


@pytest.fixture
def trust_emulator(idp: DevIdp, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a developer exports so that ``requests`` (Authlib's, MSAL's) trusts the local CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", idp.ca_bundle)


def _follow_to_emulator(browser: Browser, url: str) -> str:
    """Open an app URL that sends the browser to the emulator; return the emulator URL."""
    response = browser.client.get(url)
    if response.status_code == 302:
        return str(response.headers["location"])
    refresh = re.search(r"URL=([^']+)'", response.text)  # identity's login page
    assert refresh, f"HTTP {response.status_code}: {response.text[:300]}"
    return html.unescape(refresh.group(1))


# -- Authlib ----------------------------------------------------------------------------------


def _authlib_app(idp: DevIdp, todo_api: str) -> Flask:
    from authlib.integrations.flask_client import OAuth

    app = Flask("authlib-client")
    app.secret_key = "authlib-test-secret"
    oauth = OAuth(app)
    entra = oauth.register(
        "entra",
        client_id=defaults.WEB_APP_CLIENT_ID,
        client_secret=defaults.WEB_APP_CLIENT_SECRET,
        server_metadata_url=idp.metadata_url,
        client_kwargs={"scope": f"openid profile {READ}", "code_challenge_method": "S256"},
    )

    @app.get("/login")
    def login() -> Any:
        return entra.authorize_redirect(session["base"] + "/auth/redirect")

    @app.get("/auth/redirect")
    def redirect_back() -> Any:
        token = entra.authorize_access_token()  # validates the ID token with Authlib's JOSE
        user = token["userinfo"]
        todos = httpx.get(
            f"{todo_api}/api/todolist",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        return jsonify(
            iss=user["iss"],
            oid=user["oid"],
            email=user["preferred_username"],
            api=todos.status_code,
        )

    @app.get("/start")
    def start() -> Any:
        session["base"] = request.url_root.rstrip("/")
        return "ok"

    return app


@pytest.mark.usefixtures("trust_emulator")
def test_authlib_discovers_signs_in_and_validates_the_id_token(idp: DevIdp, todo_api: str) -> None:
    with serving_wsgi(_authlib_app(idp, todo_api)) as base, Browser() as browser:
        browser.client.get(f"{base}/start")
        authorize = _follow_to_emulator(browser, f"{base}/login")
        assert authorize.startswith(idp.endpoints.authorization_endpoint)
        assert "code_challenge=" in authorize and "nonce=" in authorize
        result = browser.sign_in(authorize, email=ADA[0], password=ADA[1])
        back = browser.client.get(result.url)
        assert back.status_code == 200, back.text[:500]
        body = back.json()
    assert body == {
        "iss": ISSUER,  # Authlib compared it with the discovered issuer
        "oid": idp.registrations.user(ADA[0]).oid,  # type: ignore[union-attr]
        "email": ADA[0],
        "api": 200,
    }


@pytest.mark.usefixtures("trust_emulator")
def test_authlib_refuses_an_id_token_from_another_issuer(idp: DevIdp, todo_api: str) -> None:
    """Authlib's own check, not ours: metadata naming another issuer (the emulator's old loopback
    form) makes it refuse the ID token."""
    from joserfc.errors import InvalidClaimError  # Authlib's JOSE (same author) since 1.6

    app = _authlib_app(idp, todo_api)
    client = app.extensions["authlib.integrations.flask_client"].entra
    client.load_server_metadata()
    client.server_metadata["issuer"] = f"{idp.authority}/v2.0"  # the emulator's old form
    app.config["PROPAGATE_EXCEPTIONS"] = True
    errors: list[BaseException] = []

    @app.errorhandler(InvalidClaimError)
    def refused(exc: InvalidClaimError) -> Any:
        errors.append(exc)
        return "refused", 401

    with serving_wsgi(app) as base, Browser() as browser:
        browser.client.get(f"{base}/start")
        authorize = _follow_to_emulator(browser, f"{base}/login")
        result = browser.sign_in(authorize, email=ADA[0], password=ADA[1])
        assert browser.client.get(result.url).status_code == 401
    assert errors and "iss" in str(errors[0])


# -- Microsoft's identity package ---------------------------------------------------------------


def _identity_app(
    idp: DevIdp, todo_api: str, setting: str, prompt: str | None, tmp: Path, base: str
) -> Flask:
    """identity's Flask sample, configured for the emulator, served at ``base``.

    ``AUTHORITY`` takes the form identity's External ID template shows
    (``https://contoso.ciamlogin.com/contoso.onmicrosoft.com``); ``OIDC_AUTHORITY`` the v2.0 one.
    """
    import identity.flask
    from cachelib import FileSystemCache

    app = Flask(f"identity-{setting}")
    app.config.update(
        SECRET_KEY="identity-test-secret",
        SESSION_TYPE="cachelib",  # Flask-Session, as identity's sample sets it up
        SESSION_CACHELIB=FileSystemCache(str(tmp / "sessions")),
    )
    authority = {
        "AUTHORITY": f"{idp.endpoints.https_base}/{defaults.TENANT_SUBDOMAIN}.onmicrosoft.com",
        "OIDC_AUTHORITY": idp.oidc_authority,
    }[setting]
    auth = identity.flask.Auth(
        app,
        client_id=defaults.WEB_APP_CLIENT_ID,
        client_credential=defaults.WEB_APP_CLIENT_SECRET,
        redirect_uri=f"{base}/auth/redirect",
        prompt=prompt,  # select_account: what identity sent by default before 0.11
        **{"authority" if setting == "AUTHORITY" else "oidc_authority": authority},
    )

    @app.get("/call_api")
    @auth.login_required(scopes=[READ])
    def call_api(*, context: dict[str, Any]) -> Any:
        todos = httpx.get(
            f"{todo_api}/api/todolist",
            headers={"Authorization": f"Bearer {context['access_token']}"},
        )
        return jsonify(user=context["user"]["preferred_username"], api=todos.status_code)

    return app


@pytest.mark.usefixtures("trust_emulator")
@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")  # identity's choice
@pytest.mark.parametrize(
    ("setting", "prompt"),
    [("OIDC_AUTHORITY", "select_account"), ("AUTHORITY", "select_account"), ("AUTHORITY", None)],
)
def test_identity_signs_in_calls_the_api_and_signs_out(
    idp: DevIdp, todo_api: str, setting: str, prompt: str | None, tmp_path: Path
) -> None:
    late = LateWSGI()  # the app needs its own URL (the redirect URI) before it is built
    with serving_wsgi(late) as base, Browser() as browser:
        late.app = _identity_app(idp, todo_api, setting, prompt, tmp_path, base)

        authorize = _follow_to_emulator(browser, f"{base}/call_api")
        assert ("prompt=select_account" in authorize) == (prompt == "select_account")
        result = browser.sign_in(authorize, email=ADA[0], password=ADA[1])
        landed = browser.client.get(result.url)
        assert landed.status_code == 302, landed.text[:500]
        called = browser.client.get(f"{base}/call_api")
        assert called.status_code == 200, called.text[:500]
        assert called.json() == {"user": ADA[0], "api": 200}

        # A second app session with the emulator's session still alive: no password asked
        # (select_account shows the picker first), single sign-on kept.
        browser.client.cookies.delete("session")
        authorize = _follow_to_emulator(browser, f"{base}/call_api")
        if prompt == "select_account":
            again = browser.pick_account(authorize, ADA[0])
        else:
            again = browser.sign_in(authorize, email=ADA[0], password="never asked")
        assert browser.client.get(again.url).status_code == 302
        assert browser.client.get(f"{base}/call_api").status_code == 200

        # Sign-out: identity redirects to the end_session_endpoint it discovered (not a local
        # fallback to the app), and the emulator's session ends there.
        logout = browser.client.get(f"{base}/auth/logout")
        assert logout.status_code == 302
        end_session = logout.headers["location"]
        assert end_session.startswith(idp.endpoints.end_session_endpoint), end_session
        back = browser.sign_out(end_session)
        assert back.status_code == 302 and back.headers["location"] == f"{base}/"
        authorize = _follow_to_emulator(browser, f"{base}/call_api")
        page = browser.client.get(authorize)
        assert page.status_code == 200 and "Pick an account" not in page.text
        assert 'name="email"' in page.text  # asked for credentials again
