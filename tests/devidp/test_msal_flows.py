"""Unmodified MSAL against the emulator, and the project's validator on what MSAL gets back."""

from __future__ import annotations

import time

import pytest

from entra_ciam import AccessTokenValidator, InvalidTokenError
from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp, sign_in
from tests.devidp.helpers import ADA, REDIRECT_URI, TODO_DEFAULT, TODO_READ, claims, msal_app


def _validator(idp: DevIdp, audience: str = defaults.TODO_API_CLIENT_ID, **kw: object):
    return AccessTokenValidator(
        authority=idp.authority, audience=audience, verify=idp.ca_bundle, **kw
    )


def _sign_in_with_msal(idp: DevIdp, scopes: list[str], response_mode: str = "form_post"):
    web = msal_app(idp, "web-app")
    flow = web.initiate_auth_code_flow(
        scopes, redirect_uri=REDIRECT_URI, response_mode=response_mode
    )
    result = sign_in(flow["auth_uri"], email=ADA[0], password=ADA[1])
    assert result.response_mode == response_mode
    tokens = web.acquire_token_by_auth_code_flow(flow, result.params)
    assert "access_token" in tokens, tokens.get("error_description")
    return web, tokens


@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
@pytest.mark.parametrize("response_mode", ["query", "form_post"])
def test_auth_code_flow_gives_a_token_the_validator_accepts(
    devidp: DevIdp, response_mode: str
) -> None:
    web, tokens = _sign_in_with_msal(devidp, [TODO_READ], response_mode)

    validated = _validator(devidp).validate(tokens["access_token"])

    ada = devidp.registrations.user(ADA[0])
    assert ada is not None
    assert validated.scopes == {"Todolist.Read"}
    assert validated.oid == ada.oid
    assert validated.tid == defaults.TENANT_ID
    assert not validated.is_app_only
    assert validated["azp"] == defaults.WEB_APP_CLIENT_ID
    id_claims = tokens["id_token_claims"]
    assert id_claims["aud"] == defaults.WEB_APP_CLIENT_ID
    assert id_claims["iss"] == devidp.issuer
    assert id_claims["preferred_username"] == ADA[0]
    # MSAL names the account from client_info: <oid>.<tenant id>
    (account,) = web.get_accounts()
    assert account["home_account_id"] == f"{ada.oid}.{defaults.TENANT_ID}"


def test_refresh_through_acquire_token_silent_after_the_access_token_expires() -> None:
    with running_devidp(lifetimes={"access_token": 2}) as idp:
        web, tokens = _sign_in_with_msal(idp, [TODO_READ])
        validator = _validator(idp, leeway=0)
        first = tokens["access_token"]
        validator.validate(first)

        time.sleep(max(0.0, claims(first)["exp"] - time.time()) + 1.1)
        with pytest.raises(InvalidTokenError):
            validator.validate(first)
        (account,) = web.get_accounts()
        refreshed = web.acquire_token_silent([TODO_READ], account=account)

        assert refreshed is not None and "access_token" in refreshed, refreshed
        assert refreshed["token_source"] == "identity_provider"
        assert refreshed["access_token"] != first
        assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotated
        assert validator.validate(refreshed["access_token"]).scopes == {"Todolist.Read"}


def test_client_credentials_gives_an_app_only_token_with_the_granted_roles(devidp: DevIdp) -> None:
    daemon = msal_app(devidp, "daemon")

    result = daemon.acquire_token_for_client([TODO_DEFAULT])

    assert "access_token" in result, result.get("error_description")
    validated = _validator(devidp).validate(result["access_token"])
    assert validated.is_app_only
    assert validated.roles == {"Todolist.Read.All", "Todolist.ReadWrite.All"}
    assert validated.scopes == frozenset()
    assert validated["idtyp"] == "app"
    assert validated["azp"] == defaults.DAEMON_CLIENT_ID
    assert "refresh_token" not in result and "id_token" not in result


def test_on_behalf_of_exchanges_the_users_token_for_a_downstream_token(devidp: DevIdp) -> None:
    _, tokens = _sign_in_with_msal(devidp, [TODO_READ])
    api = msal_app(devidp, "todo-api")

    result = api.acquire_token_on_behalf_of(tokens["access_token"], ["User.Read"])

    assert "access_token" in result, result.get("error_description")
    downstream = _validator(devidp, audience=defaults.GRAPH_CLIENT_ID).validate(
        result["access_token"]
    )
    upstream = claims(tokens["access_token"])
    assert downstream.oid == upstream["oid"]  # the same user...
    assert downstream["azp"] == defaults.TODO_API_CLIENT_ID  # ...now through the API
    assert downstream.scopes == {"User.Read"}
    assert downstream.sub != upstream["sub"]  # pairwise: another app, another sub


def test_a_second_sign_in_reuses_the_emulator_session(devidp: DevIdp) -> None:
    web = msal_app(devidp, "web-app")
    with Browser() as browser:
        first = web.initiate_auth_code_flow(
            [TODO_READ], redirect_uri=REDIRECT_URI, response_mode="form_post"
        )
        browser.sign_in(first["auth_uri"], email=ADA[0], password=ADA[1])
        second = web.initiate_auth_code_flow(
            [TODO_READ], redirect_uri=REDIRECT_URI, response_mode="form_post"
        )
        # No page this time (blank credentials would be refused): the emulator's cookie signs
        # the person straight back in.
        result = browser.sign_in(second["auth_uri"], email="", password="")
    tokens = web.acquire_token_by_auth_code_flow(second, result.params)
    assert "access_token" in tokens, tokens.get("error_description")
