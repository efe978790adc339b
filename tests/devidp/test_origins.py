"""One origin serves every endpoint, as a real tenant's host does (issue 12, points 1 and 2).

The https authority origin answers discovery (with and without ``/v2.0``), keys, token, authorize
and logout for every tenant path form, and shows the tenant's page at its root; MSAL Python keeps
working unmodified with the real issuer form and with the old loopback form.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import msal
import pytest

from entra_ciam import AccessTokenValidator
from entra_ciam.devidp import defaults
from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from entra_ciam.http import MsalHttpClient
from tests.devidp.helpers import ADA, ISSUER, REDIRECT_URI, TODO_READ, authorize_url, msal_app, tls

DOMAIN = f"{defaults.TENANT_SUBDOMAIN}.onmicrosoft.com"


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def _prefixes(idp: DevIdp) -> list[str]:
    """The authority in each form a user may give: tenant id, initial domain, none (host only)."""
    base = idp.endpoints.https_base
    return [f"{base}/{defaults.TENANT_ID}", f"{base}/{DOMAIN}", base]


@pytest.mark.parametrize("form", ["tenant-id", "domain", "host-only"])
def test_discovery_and_keys_answer_on_the_https_origin_for_every_path_form(
    idp: DevIdp, form: str
) -> None:
    prefix = _prefixes(idp)[["tenant-id", "domain", "host-only"].index(form)]
    with httpx.Client(verify=tls(idp)) as client:
        v2 = client.get(f"{prefix}/v2.0/.well-known/openid-configuration")
        # Microsoft's identity package reads end_session_endpoint from the path without /v2.0.
        bare = client.get(f"{prefix}/.well-known/openid-configuration")
        assert v2.status_code == bare.status_code == 200
        assert v2.json()["issuer"] == bare.json()["issuer"] == ISSUER
        assert bare.json()["end_session_endpoint"] == idp.endpoints.end_session_endpoint
        keys = client.get(f"{prefix}/discovery/v2.0/keys")
        assert keys.status_code == 200 and keys.json()["keys"]


@pytest.mark.parametrize("form", ["tenant-id", "domain", "host-only"])
def test_authorize_and_logout_on_the_https_origin_go_to_the_pages(idp: DevIdp, form: str) -> None:
    prefix = _prefixes(idp)[["tenant-id", "domain", "host-only"].index(form)]
    query = "client_id=x&state=s%20t"
    with httpx.Client(verify=tls(idp)) as client:
        for endpoint in ("authorize", "logout"):
            path = f"{urlsplit(prefix).path}/oauth2/v2.0/{endpoint}"
            answer = client.get(f"{prefix}/oauth2/v2.0/{endpoint}?{query}")
            assert answer.status_code == 302
            assert answer.headers["location"] == f"{idp.pages_url}{path}?{query}"
        posted = client.post(f"{prefix}/oauth2/v2.0/logout", data={"state": "s"})
        assert posted.status_code == 307  # the browser posts the same form to the pages origin
        assert posted.headers["location"].startswith(idp.pages_url)


def test_a_logout_url_built_from_the_authority_signs_the_user_out(idp: DevIdp) -> None:
    """Microsoft's Node sample: ``<authority><sub>.onmicrosoft.com/oauth2/v2.0/logout?...``
    with its ``POST_LOGOUT_REDIRECT_URI`` default, ``http://localhost:3000`` (no path), while
    the web app lists ``http://localhost:3000/``: the same URI to Entra, answered at ``/``."""
    authority = f"{idp.endpoints.https_base}/"
    home = "http://localhost:3000"
    with Browser(verify=idp.ca_bundle) as browser:
        signed_in = browser.sign_in(authorize_url(idp), email=ADA[0], password=ADA[1])
        assert signed_in.code
        out = browser.sign_out(
            f"{authority}{DOMAIN}/oauth2/v2.0/logout?post_logout_redirect_uri={home}"
        )
        assert out.status_code == 302 and out.headers["location"] == f"{home}/"
        again = browser.client.get(authorize_url(idp))
        assert again.status_code == 200 and "Enter password" not in again.text
        assert 'name="email"' in again.text  # asks for credentials again
        silent = browser.client.get(authorize_url(idp, prompt="none"))
        assert "error=login_required" in silent.headers["location"]


def test_unknown_tenants_are_refused_on_both_origins(idp: DevIdp) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    answer = httpx.get(
        f"{idp.endpoints.https_base}/{other}/v2.0/.well-known/openid-configuration",
        verify=tls(idp),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_tenant"
    page = httpx.get(f"{idp.pages_url}/{other}/oauth2/v2.0/authorize")
    assert page.status_code == 404


@pytest.mark.parametrize("where", ["https-root", "authority", "pages-root"])
def test_the_root_urls_show_the_tenant(idp: DevIdp, where: str) -> None:
    url = {
        "https-root": f"{idp.endpoints.https_base}/",
        "authority": idp.authority,
        "pages-root": f"{idp.pages_url}/",
    }[where]
    page = httpx.get(url, verify=tls(idp))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for expected in (defaults.TENANT_ID, idp.authority, ISSUER, idp.metadata_url):
        assert expected in page.text
    for app in ("web-app", "todo-api", "daemon"):
        assert idp.app(app).client_id in page.text
    assert ADA[0] in page.text
    for secret in (ADA[1], defaults.WEB_APP_CLIENT_SECRET, defaults.DAEMON_CLIENT_SECRET):
        assert secret not in page.text  # printed on the console only


def test_msal_python_unmodified_with_oidc_authority_and_with_authority(idp: DevIdp) -> None:
    """MSAL accepts the *.ciamlogin.com issuer for ``oidc_authority`` (it checks it) and does
    not check it for ``authority`` (Microsoft's identity package uses that, discovery off)."""
    by_oidc = msal_app(idp, "web-app")
    by_authority = msal.ConfidentialClientApplication(
        defaults.WEB_APP_CLIENT_ID,
        client_credential=defaults.WEB_APP_CLIENT_SECRET,
        authority=idp.authority,
        instance_discovery=False,
        http_client=MsalHttpClient(verify=idp.ca_bundle),
    )
    validator = AccessTokenValidator(
        authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
    )
    for app in (by_oidc, by_authority):
        flow = app.initiate_auth_code_flow(
            [TODO_READ], redirect_uri=REDIRECT_URI, response_mode="form_post"
        )
        with Browser() as browser:
            result = browser.sign_in(flow["auth_uri"], email=ADA[0], password=ADA[1])
        tokens = app.acquire_token_by_auth_code_flow(flow, result.params)
        assert "access_token" in tokens, tokens.get("error_description")
        assert tokens["id_token_claims"]["iss"] == ISSUER
        assert validator.validate(tokens["access_token"]).scopes == {"Todolist.Read"}


def test_the_loopback_issuer_stays_an_option() -> None:
    mapping = default_mapping()
    mapping["tenant"]["issuer"] = "loopback"
    with running_devidp(Registrations.from_mapping(mapping)) as idp:
        assert idp.issuer == f"{idp.authority}/v2.0"
        doc = httpx.get(idp.metadata_url, verify=tls(idp)).json()
        assert doc["issuer"] == idp.issuer
        app = msal_app(idp, "daemon")
        token = app.acquire_token_for_client([f"{defaults.TODO_API_IDENTIFIER_URI}/.default"])
        validator = AccessTokenValidator(
            authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
        )
        claims = validator.validate(token["access_token"])
        assert claims["iss"] == idp.issuer and claims.is_app_only
