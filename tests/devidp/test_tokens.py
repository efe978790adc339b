"""Token and metadata shapes, claim by claim, against DESIGN.md section 1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from entra_ciam import AccessTokenValidator, InvalidTokenError
from entra_ciam.devidp import defaults
from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from tests.devidp.helpers import (
    ADA,
    ISSUER,
    REDIRECT_URI,
    TODO_DEFAULT,
    TODO_READ,
    claims,
    header,
    msal_app,
    redeem_code,
    tls,
)
from tests.support.idp_tokens import app_token, app_token_response

# DESIGN.md / issue 3: the claims a v2 access token from Entra External ID carries.
USER_ACCESS_CLAIMS = {
    "iss", "aud", "tid", "oid", "sub", "azp", "azpacr", "scp", "name", "preferred_username",
    "ver", "iat", "nbf", "exp", "uti",
}  # fmt: skip
APP_ACCESS_CLAIMS = {
    "iss", "aud", "tid", "oid", "sub", "azp", "azpacr", "roles", "ver", "iat", "nbf", "exp", "uti",
}  # fmt: skip
ID_TOKEN_CLAIMS = {
    "iss", "aud", "tid", "oid", "sub", "name", "preferred_username", "ver", "iat", "nbf", "exp",
    "nonce",
}  # fmt: skip


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def sign_in_tokens(idp: DevIdp, scopes: list[str], **flow_args: object) -> dict:
    web = msal_app(idp, "web-app")
    flow = web.initiate_auth_code_flow(
        scopes, redirect_uri=REDIRECT_URI, response_mode="form_post", **flow_args
    )
    with Browser() as browser:
        result = browser.sign_in(flow["auth_uri"], email=ADA[0], password=ADA[1])
    tokens = web.acquire_token_by_auth_code_flow(flow, result.params)
    assert "access_token" in tokens, tokens.get("error_description")
    tokens["_flow_nonce"] = flow["nonce"]
    return tokens


def test_user_access_token_is_shaped_like_entras(idp: DevIdp) -> None:
    tokens = sign_in_tokens(idp, [TODO_READ])
    token = tokens["access_token"]
    c = claims(token)
    ada = idp.registrations.user(ADA[0])
    assert ada is not None

    assert header(token).keys() == {"alg", "kid", "typ"}
    assert header(token)["alg"] == "RS256"
    assert c.keys() >= USER_ACCESS_CLAIMS
    assert "roles" not in c
    assert c["idtyp"] == "user"  # the built-in todo API asks for idtyp, as the how-to does
    assert c["iss"] == idp.issuer == ISSUER  # Entra's form: not the authority's host
    assert c["aud"] == defaults.TODO_API_CLIENT_ID
    assert c["tid"] == defaults.TENANT_ID
    assert c["oid"] == ada.oid
    assert c["azp"] == defaults.WEB_APP_CLIENT_ID and c["azpacr"] == "1"
    assert c["scp"] == "Todolist.Read"
    assert c["ver"] == "2.0"
    assert c["name"] == "Ada Lovelace" and c["preferred_username"] == ADA[0]
    assert c["nbf"] == c["iat"] and c["exp"] - c["iat"] == defaults.ACCESS_TOKEN_LIFETIME


def test_id_token_carries_the_nonce_and_a_per_app_sub(idp: DevIdp) -> None:
    tokens = sign_in_tokens(idp, [TODO_READ])
    id_claims = claims(tokens["id_token"])
    access = claims(tokens["access_token"])

    assert id_claims.keys() >= ID_TOKEN_CLAIMS
    # MSAL sends sha256(nonce) as the nonce and compares it with the id token's.
    assert id_claims["nonce"] == hashlib.sha256(tokens["_flow_nonce"].encode()).hexdigest()
    assert id_claims["aud"] == defaults.WEB_APP_CLIENT_ID
    assert id_claims["oid"] == access["oid"]
    assert id_claims["sub"] != access["sub"]  # pairwise: web app vs todo API
    assert "auth_time" not in id_claims and "email" not in id_claims
    assert id_claims["iss"] == ISSUER
    assert id_claims["login_hint"].startswith("O.")  # the web app asks for it (logout_hint)

    again = claims(sign_in_tokens(idp, [TODO_READ])["id_token"])
    assert again["sub"] == id_claims["sub"]  # stable for the same user and app


def test_max_age_and_email_scope_add_auth_time_and_email(idp: DevIdp) -> None:
    tokens = sign_in_tokens(idp, [TODO_READ, "email"], max_age=300)
    id_claims = claims(tokens["id_token"])
    assert id_claims["email"] == ADA[0]
    assert isinstance(id_claims["auth_time"], int)


def test_app_only_token_is_shaped_like_entras(idp: DevIdp) -> None:
    body = app_token_response(idp)
    c = claims(body["access_token"])
    assert c.keys() >= APP_ACCESS_CLAIMS
    assert "scp" not in c and "name" not in c and "preferred_username" not in c
    assert c["idtyp"] == "app"
    assert c["roles"] == ["Todolist.Read.All", "Todolist.ReadWrite.All"]
    assert c["oid"] == c["sub"] == idp.app("daemon").service_principal_id
    assert body["scope"] == TODO_DEFAULT
    assert body["token_type"] == "Bearer" and body["expires_in"] == defaults.ACCESS_TOKEN_LIFETIME


def test_openid_scopes_alone_give_a_graph_token(idp: DevIdp) -> None:
    body = redeem_code(idp, "openid profile offline_access")
    assert claims(body["access_token"])["aud"] == defaults.GRAPH_CLIENT_ID
    assert claims(body["access_token"])["scp"] == "User.Read openid profile"
    assert {"id_token", "refresh_token"} <= body.keys()
    assert "client_info" not in body  # only when asked for, as MSAL does


def test_discovery_points_pages_at_http_and_the_back_channel_at_https(idp: DevIdp) -> None:
    doc = httpx.get(idp.metadata_url, verify=tls(idp)).json()
    assert doc["issuer"] == ISSUER
    assert idp.oidc_authority == f"{idp.authority}/v2.0" != doc["issuer"]
    # What real tenants list besides the endpoints.
    assert doc["response_modes_supported"] == ["query", "fragment", "form_post"]
    assert doc["frontchannel_logout_supported"] is True
    assert doc["userinfo_endpoint"] == idp.endpoints.https_base + "/oidc/userinfo"
    for key in ("token_endpoint", "jwks_uri"):
        assert doc[key].startswith(idp.authority + "/")
    for key in ("authorization_endpoint", "end_session_endpoint"):
        assert doc[key].startswith(idp.pages_url + f"/{defaults.TENANT_ID}/oauth2/v2.0/")
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


def test_idtyp_only_when_the_api_registration_asks_for_it() -> None:
    mapping = default_mapping()
    api = next(a for a in mapping["apps"] if a["name"] == "todo-api")
    del api["optional_claims"]
    with running_devidp(Registrations.from_mapping(mapping)) as idp:
        app_only = claims(app_token(idp))
        user = claims(sign_in_tokens(idp, [TODO_READ])["access_token"])
        assert "idtyp" not in app_only and "idtyp" not in user
        # Still recognisably app-only, the way Entra's tokens are by default.
        assert "scp" not in app_only and app_only["oid"] == app_only["sub"]
        validator = AccessTokenValidator(
            authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
        )
        assert validator.validate(app_token(idp)).is_app_only


def test_an_api_left_at_v1_gets_v1_tokens_and_the_validator_names_the_fix() -> None:
    mapping = default_mapping()
    api = next(a for a in mapping["apps"] if a["name"] == "todo-api")
    api["access_token_version"] = 1
    with running_devidp(Registrations.from_mapping(mapping)) as idp:
        user = sign_in_tokens(idp, [TODO_READ])
        c = claims(user["access_token"])
        assert c["iss"] == f"https://sts.windows.net/{defaults.TENANT_ID}/"
        assert c["ver"] == "1.0" and c["aud"] == defaults.TODO_API_IDENTIFIER_URI
        assert c["appid"] == defaults.WEB_APP_CLIENT_ID and c["appidacr"] == "1"
        assert "azp" not in c and c["scp"] == "Todolist.Read"
        assert claims(user["id_token"])["ver"] == "2.0"  # ID tokens stay v2.0
        app_only = claims(app_token(idp))
        assert app_only["ver"] == "1.0" and app_only["appid"] == defaults.DAEMON_CLIENT_ID

        validator = AccessTokenValidator(
            authority=idp.authority,
            audience=defaults.TODO_API_CLIENT_ID,
            verify=idp.ca_bundle,
            accept_v1_audience=True,
        )
        with pytest.raises(InvalidTokenError) as refused:
            validator.validate(user["access_token"])
        assert "requestedAccessTokenVersion" in refused.value.description
        assert "to 2" in refused.value.description
