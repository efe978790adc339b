"""Every refusal the emulator makes, in Entra's shapes: JSON from /token, redirects from /authorize,
messages on the pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entra_ciam.devidp import defaults
from entra_ciam.devidp.cli import example_config_text
from entra_ciam.devidp.registrations import (
    RegistrationError,
    Registrations,
    default_mapping,
    load_registrations,
)
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, SignInError, running_devidp, token_requests
from tests.devidp.helpers import (
    ADA,
    REDIRECT_URI,
    TODO_DEFAULT,
    TODO_READ,
    TODO_WRITE,
    assert_entra_error,
    authorize_url,
    msal_app,
    pkce_pair,
    tls,
)

WEB = (defaults.WEB_APP_CLIENT_ID, defaults.WEB_APP_CLIENT_SECRET)


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def token_request(idp: DevIdp, client: tuple[str, str] = WEB, **form: str) -> httpx.Response:
    data = {"client_id": client[0], "client_secret": client[1], **form}
    return httpx.post(idp.endpoints.token_endpoint, data=data, verify=tls(idp))


def new_code(idp: DevIdp, *, scope: str | None = None) -> tuple[str, str]:
    """Sign Ada in by hand; return (code, verifier)."""
    verifier, challenge = pkce_pair()
    overrides = {"code_challenge": challenge}
    if scope is not None:
        overrides["scope"] = scope
    with Browser() as browser:
        result = browser.sign_in(authorize_url(idp, **overrides), email=ADA[0], password=ADA[1])
    assert result.code, result.params
    return result.code, verifier


def redeem(idp: DevIdp, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }
    return token_request(idp, **form)


def refresh(idp: DevIdp, refresh_token: str, scope: str = TODO_READ) -> httpx.Response:
    return token_request(idp, grant_type="refresh_token", refresh_token=refresh_token, scope=scope)


# -- the pages ------------------------------------------------------------------------------


def test_wrong_password_is_refused_on_the_page(idp: DevIdp) -> None:
    with Browser() as browser, pytest.raises(SignInError) as refused:
        browser.sign_in(authorize_url(idp), email=ADA[0], password="not-her-password")
    assert refused.value.status == 401
    assert "Your password is incorrect." in refused.value.message


def test_unknown_user_is_refused_on_the_page(idp: DevIdp) -> None:
    with Browser() as browser, pytest.raises(SignInError) as refused:
        browser.sign_in(authorize_url(idp), email="nobody@example.com", password="x")
    assert refused.value.status == 401
    assert "couldn't find an account" in refused.value.message


def test_unregistered_redirect_uri_is_shown_not_redirected(idp: DevIdp) -> None:
    url = authorize_url(idp, redirect_uri="https://evil.example/steal")
    response = httpx.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "AADSTS50011" in response.text
    assert "evil.example" in response.text  # named, so the developer sees what was sent


def test_unknown_client_is_shown_not_redirected(idp: DevIdp) -> None:
    response = httpx.get(authorize_url(idp, client_id="00000000-0000-0000-0000-000000000001"))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "AADSTS700016" in response.text


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"code_challenge": None}, "invalid_request", 50149),  # a method without a challenge
        ({"code_challenge_method": "plain"}, "invalid_request", 50149),
        ({"response_type": "token"}, "unsupported_response_type", 70005),
        ({"scope": "openid api://nope/Read"}, "invalid_resource", 500011),
        (
            {"scope": f"openid {defaults.TODO_API_IDENTIFIER_URI}/Todolist.Delete"},
            "invalid_scope",
            70011,
        ),
        ({"scope": f"openid {TODO_READ} User.Read"}, "invalid_scope", 700022),
        ({"prompt": "none"}, "login_required", 50058),
    ],
)
def test_authorize_errors_go_back_to_the_app_with_the_state(
    idp: DevIdp, overrides: dict[str, str | None], error: str, code: int
) -> None:
    response = httpx.get(authorize_url(idp, **overrides))
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(REDIRECT_URI)
    assert location.params["error"] == error
    assert location.params["error_description"].startswith(f"AADSTS{code}: ")
    assert location.params["state"] == "state-123"
    assert "code" not in location.params


# -- client authentication ------------------------------------------------------------------


def test_bad_client_secret_with_msal(idp: DevIdp) -> None:
    import msal

    from entra_ciam.http import MsalHttpClient

    daemon = msal.ConfidentialClientApplication(
        defaults.DAEMON_CLIENT_ID,
        client_credential="not-the-secret",
        oidc_authority=idp.oidc_authority,
        http_client=MsalHttpClient(verify=tls(idp)),
    )
    result = daemon.acquire_token_for_client([TODO_DEFAULT])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "access_token" not in result


def test_bad_client_secret_is_401_invalid_client(idp: DevIdp) -> None:
    response = token_request(
        idp,
        (defaults.DAEMON_CLIENT_ID, "wrong"),
        grant_type="client_credentials",
        scope=TODO_DEFAULT,
    )
    assert_entra_error(response, 401, "invalid_client", 7000215)


def test_client_secret_in_basic_auth_works_and_a_wrong_one_fails(idp: DevIdp) -> None:
    form = {"grant_type": "client_credentials", "scope": TODO_DEFAULT}
    good = httpx.post(
        idp.endpoints.token_endpoint,
        data=form,
        auth=(defaults.DAEMON_CLIENT_ID, defaults.DAEMON_CLIENT_SECRET),
        verify=tls(idp),
    )
    assert good.status_code == 200, good.text
    bad = httpx.post(
        idp.endpoints.token_endpoint,
        data=form,
        auth=(defaults.DAEMON_CLIENT_ID, "wrong"),
        verify=tls(idp),
    )
    assert_entra_error(bad, 401, "invalid_client", 7000215)


def test_missing_secret_and_unknown_client(idp: DevIdp) -> None:
    missing = httpx.post(
        idp.endpoints.token_endpoint,
        data={"client_id": defaults.DAEMON_CLIENT_ID, "grant_type": "client_credentials"},
        verify=tls(idp),
    )
    assert_entra_error(missing, 401, "invalid_client", 7000218)
    unknown = token_request(
        idp,
        ("00000000-0000-0000-0000-000000000001", "x"),
        grant_type="client_credentials",
        scope=TODO_DEFAULT,
    )
    assert_entra_error(unknown, 400, "unauthorized_client", 700016)


# -- authorization codes --------------------------------------------------------------------


def test_redirect_uri_at_the_token_endpoint_must_match_the_one_used_to_get_the_code(
    idp: DevIdp,
) -> None:
    code, verifier = new_code(idp)
    response = redeem(idp, code, verifier, redirect_uri="http://127.0.0.1:3000/auth/redirect")
    assert_entra_error(response, 400, "invalid_grant", 500112)


def test_pkce_verifier_mismatch_fails_and_burns_the_code(idp: DevIdp) -> None:
    code, verifier = new_code(idp)
    wrong, _ = pkce_pair()
    assert_entra_error(redeem(idp, code, wrong), 400, "invalid_grant", 501481)
    # The code is single use even when the first attempt failed.
    assert_entra_error(redeem(idp, code, verifier), 400, "invalid_grant", 54005)


def test_code_replay_fails_and_revokes_the_tokens_of_the_first_use(idp: DevIdp) -> None:
    code, verifier = new_code(idp)
    first = redeem(idp, code, verifier)
    assert first.status_code == 200, first.text
    refresh_token = first.json()["refresh_token"]

    assert_entra_error(redeem(idp, code, verifier), 400, "invalid_grant", 54005)

    # bad_token, as Entra says it: MSAL drops the refresh token and asks for a sign-in.
    assert_entra_error(refresh(idp, refresh_token), 400, "invalid_grant", 50173, "bad_token")


def test_expired_code_is_refused() -> None:
    with running_devidp() as idp:
        code, verifier = new_code(idp)
        idp.clock.advance(defaults.AUTH_CODE_LIFETIME + 1)
        assert_entra_error(redeem(idp, code, verifier), 400, "invalid_grant", 70008)


def test_code_of_another_client_is_refused(idp: DevIdp) -> None:
    code, verifier = new_code(idp)
    response = token_request(
        idp,
        (defaults.TODO_API_CLIENT_ID, defaults.TODO_API_CLIENT_SECRET),
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert_entra_error(response, 400, "invalid_grant", 70000)
    # The rightful client can still redeem it: a stranger cannot burn someone else's code.
    assert redeem(idp, code, verifier).status_code == 200


def test_garbage_code_and_missing_parameters(idp: DevIdp) -> None:
    _, verifier = pkce_pair()
    assert_entra_error(redeem(idp, "not-a-code", verifier), 400, "invalid_grant", 9002313)
    missing = token_request(idp, grant_type="authorization_code", redirect_uri=REDIRECT_URI)
    assert_entra_error(missing, 400, "invalid_request", 900144)
    unsupported = token_request(idp, grant_type="password", username="a", password="b")
    assert_entra_error(unsupported, 400, "unsupported_grant_type", 70003)


def test_get_on_the_token_endpoint_is_405(idp: DevIdp) -> None:
    response = httpx.get(idp.endpoints.token_endpoint, verify=tls(idp))
    assert response.status_code == 405
    assert response.json()["error_codes"] == [900561]


# -- refresh tokens -------------------------------------------------------------------------


def test_refresh_tokens_may_be_reused_as_in_entra_and_every_request_is_counted(
    idp: DevIdp,
) -> None:
    code, verifier = new_code(idp)
    rt1 = redeem(idp, code, verifier).json()["refresh_token"]
    before = token_requests(idp)["requested"].get("refresh_token", 0)
    second = refresh(idp, rt1)
    assert second.status_code == 200, second.text
    rt2 = second.json()["refresh_token"]
    assert rt2 != rt1  # a new one with every refresh...
    again = refresh(idp, rt1)  # ...and the used one is still good, as in Entra
    assert again.status_code == 200, again.text
    assert refresh(idp, rt2).status_code == 200
    assert_entra_error(refresh(idp, "1.not-a-refresh-token"), 400, "invalid_grant", 9002313)
    counts = token_requests(idp)
    assert counts["requested"]["refresh_token"] == before + 4  # the refused one too
    assert counts["issued"]["refresh_token"] >= 3


def test_one_time_refresh_tokens_revoke_the_family_on_reuse() -> None:
    with running_devidp(one_time_refresh_tokens=True) as idp:
        code, verifier = new_code(idp)
        rt1 = redeem(idp, code, verifier).json()["refresh_token"]
        second = refresh(idp, rt1)
        assert second.status_code == 200, second.text
        rt2 = second.json()["refresh_token"]
        assert rt2 != rt1

        reuse, revoked = refresh(idp, rt1), refresh(idp, rt2)  # the family is revoked
        assert_entra_error(reuse, 400, "invalid_grant", 50173, "bad_token")
        assert_entra_error(revoked, 400, "invalid_grant", 50173, "bad_token")
        counts = token_requests(idp, reset=True)
        assert counts["requested"] == {"authorization_code": 1, "refresh_token": 3}
        assert counts["issued"] == {"authorization_code": 1, "refresh_token": 1}
        assert token_requests(idp)["requested"] == {}


def test_one_time_refresh_tokens_from_the_toml_file(tmp_path: Path) -> None:
    text = example_config_text().replace(
        "refresh_token_reuse = true", "refresh_token_reuse = false"
    )
    path = tmp_path / "tenant.toml"
    path.write_text(text)
    assert load_registrations(path).grants.refresh_token_reuse is False
    assert load_registrations(None).grants.refresh_token_reuse is True
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("refresh_token_reuse = false", 'refresh_token_reuse = "no"'))
    with pytest.raises(RegistrationError, match="refresh_token_reuse' must be true or false"):
        load_registrations(bad)


def test_expired_refresh_token_is_refused() -> None:
    with running_devidp(lifetimes={"refresh_token": 60}) as idp:
        code, verifier = new_code(idp)
        rt = redeem(idp, code, verifier).json()["refresh_token"]
        idp.clock.advance(61)
        assert_entra_error(refresh(idp, rt), 400, "invalid_grant", 700082, "bad_token")


# -- consent and scopes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_tenant() -> Iterator[DevIdp]:
    """The web app has admin consent for Todolist.Read only; the daemon has no app role."""
    mapping = default_mapping()
    web = next(a for a in mapping["apps"] if a["name"] == "web-app")
    web["delegated_permissions"]["todo-api"] = ["Todolist.Read"]
    daemon = next(a for a in mapping["apps"] if a["name"] == "daemon")
    daemon["application_permissions"] = {}
    with running_devidp(Registrations.from_mapping(mapping)) as running:
        yield running


def test_scope_without_admin_consent_is_refused_at_authorize(read_only_tenant: DevIdp) -> None:
    response = httpx.get(authorize_url(read_only_tenant, scope=f"openid {TODO_WRITE}"))
    location = httpx.URL(response.headers["location"])
    assert location.params["error"] == "consent_required"
    assert location.params["error_description"].startswith("AADSTS65001: ")
    assert location.params["state"] == "state-123"
    assert "suberror" not in location.params  # the error itself says it at /authorize


def test_scope_without_admin_consent_is_refused_at_the_token_endpoint(
    read_only_tenant: DevIdp,
) -> None:
    code, verifier = new_code(read_only_tenant)
    rt = redeem(read_only_tenant, code, verifier).json()["refresh_token"]
    refused = refresh(read_only_tenant, rt, TODO_WRITE)
    assert_entra_error(refused, 400, "invalid_grant", 65001, "consent_required")


def test_scope_without_admin_consent_is_refused_to_msal(read_only_tenant: DevIdp) -> None:
    web = msal_app(read_only_tenant, "web-app")
    flow = web.initiate_auth_code_flow(
        [TODO_WRITE], redirect_uri=REDIRECT_URI, response_mode="form_post"
    )
    with Browser() as browser:
        result = browser.sign_in(flow["auth_uri"], email=ADA[0], password=ADA[1])
    tokens = web.acquire_token_by_auth_code_flow(flow, result.params)
    assert tokens["error"] == "consent_required"
    assert "access_token" not in tokens


def test_app_without_app_roles_gets_no_token(read_only_tenant: DevIdp) -> None:
    response = token_request(
        read_only_tenant,
        (defaults.DAEMON_CLIENT_ID, defaults.DAEMON_CLIENT_SECRET),
        grant_type="client_credentials",
        scope=TODO_DEFAULT,
    )
    assert_entra_error(response, 400, "invalid_grant", 501051)


def test_client_credentials_need_a_default_scope(idp: DevIdp) -> None:
    response = token_request(
        idp,
        (defaults.DAEMON_CLIENT_ID, defaults.DAEMON_CLIENT_SECRET),
        grant_type="client_credentials",
        scope=TODO_READ,
    )
    assert_entra_error(response, 400, "invalid_scope", 1002012)


# -- on-behalf-of ---------------------------------------------------------------------------


def _obo(idp: DevIdp, assertion: str) -> httpx.Response:
    return token_request(
        idp,
        (defaults.TODO_API_CLIENT_ID, defaults.TODO_API_CLIENT_SECRET),
        grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        requested_token_use="on_behalf_of",
        assertion=assertion,
        scope="User.Read",
    )


def test_on_behalf_of_refuses_app_tokens_foreign_audiences_and_forgeries(idp: DevIdp) -> None:
    app_only = token_request(
        idp,
        (defaults.DAEMON_CLIENT_ID, defaults.DAEMON_CLIENT_SECRET),
        grant_type="client_credentials",
        scope=TODO_DEFAULT,
    ).json()["access_token"]
    assert_entra_error(_obo(idp, app_only), 400, "invalid_grant", 50013)

    code, verifier = new_code(idp, scope="openid User.Read")  # a token for Graph, not the API
    graph_token = redeem(idp, code, verifier, scope="openid User.Read").json()["access_token"]
    assert_entra_error(_obo(idp, graph_token), 400, "invalid_grant", 50013)

    code, verifier = new_code(idp)
    user_token = redeem(idp, code, verifier).json()["access_token"]
    head, payload, signature = user_token.split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    assert_entra_error(_obo(idp, forged), 400, "invalid_grant", 50013)
    assert _obo(idp, user_token).status_code == 200


def test_unknown_tenant_in_discovery(idp: DevIdp) -> None:
    url = idp.metadata_url.replace(defaults.TENANT_ID, "contoso.onmicrosoft.com")
    response = httpx.get(url, verify=tls(idp))
    assert_entra_error(response, 400, "invalid_tenant", 90002)
    by_domain = idp.metadata_url.replace(
        defaults.TENANT_ID, f"{defaults.TENANT_SUBDOMAIN}.onmicrosoft.com"
    )
    assert httpx.get(by_domain, verify=tls(idp)).json()["issuer"] == idp.issuer


# -- PKCE: required for public clients and SPAs, optional for confidential ones (as in Entra) ------


def _public_tenant(**strict: bool) -> Registrations:
    mapping = default_mapping()
    mapping["apps"].append(
        {
            "name": "spa",
            "client_id": "0f0e0d0c-0b0a-4908-8706-050403020100",
            "spa": True,
            "redirect_uris": ["http://localhost:3001/"],
            "delegated_permissions": {"todo-api": ["Todolist.Read"]},
        }
    )
    if strict:
        mapping["strict"] = strict
    return Registrations.from_mapping(mapping)


def test_a_confidential_client_may_skip_pkce(idp: DevIdp) -> None:
    url = authorize_url(idp, code_challenge=None, code_challenge_method=None)
    with Browser() as browser:
        code = browser.sign_in(url, email=ADA[0], password=ADA[1]).code
    assert code
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    assert token_request(idp, **form).status_code == 200
    with Browser() as browser:
        code = browser.sign_in(url, email=ADA[0], password=ADA[1]).code
    # A verifier for a request that had no challenge is a confused client: refused.
    confused = token_request(idp, **{**form, "code": str(code), "code_verifier": "x" * 43})
    assert_entra_error(confused, 400, "invalid_grant", 501481)


def test_public_clients_and_spas_must_use_pkce() -> None:
    with running_devidp(_public_tenant()) as idp:
        url = authorize_url(
            idp,
            client_id="0f0e0d0c-0b0a-4908-8706-050403020100",
            redirect_uri="http://localhost:3001/",
            scope=f"openid {TODO_READ}",
            code_challenge=None,
            code_challenge_method=None,
        )
        answer = httpx.get(url)
        assert answer.status_code == 302
        assert "error=invalid_request" in answer.headers["location"]
        assert (
            "AADSTS9002325"
            in httpx.QueryParams(answer.headers["location"].split("?")[1])["error_description"]
        )


def test_strict_pkce_requires_it_of_confidential_clients_too() -> None:
    with running_devidp(_public_tenant(pkce_for_confidential_clients=True)) as idp:
        url = authorize_url(idp, code_challenge=None, code_challenge_method=None)
        location = httpx.get(url).headers["location"]
        assert "error=invalid_request" in location and "AADSTS9002325" in location


def test_a_spa_cannot_hold_a_secret() -> None:
    mapping = default_mapping()
    mapping["apps"].append(
        {
            "name": "spa",
            "client_id": "0f0e0d0c-0b0a-4908-8706-050403020100",
            "spa": True,
            "client_secret": "nope",
        }
    )
    with pytest.raises(RegistrationError, match="single-page app"):
        Registrations.from_mapping(mapping)
