"""Microsoft Graph's /oidc/userinfo on the emulator's https origin (issue 12, point 5)."""

from __future__ import annotations

import httpx

from entra_ciam.devidp.server import DevIdp
from tests.devidp.helpers import ADA, TODO_READ, claims, redeem_code, tls


def test_userinfo_answers_a_graph_token_with_the_users_claims(devidp: DevIdp) -> None:
    doc = httpx.get(devidp.metadata_url, verify=tls(devidp)).json()
    tokens = redeem_code(devidp, "openid profile email")
    answer = httpx.get(
        doc["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        verify=tls(devidp),
    )
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert info["sub"] == claims(tokens["id_token"])["sub"]  # the ID token's sub, as in Entra
    assert info["name"] == "Ada Lovelace" and info["given_name"] == "Ada"
    assert info["family_name"] == "Lovelace" and info["email"] == ADA[0]


def test_userinfo_refuses_what_is_not_a_users_graph_token(devidp: DevIdp) -> None:
    url = f"{devidp.endpoints.https_base}/oidc/userinfo"
    none = httpx.get(url, verify=tls(devidp))
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    api_token = redeem_code(devidp, f"openid {TODO_READ}")["access_token"]
    wrong = httpx.get(url, headers={"Authorization": f"Bearer {api_token}"}, verify=tls(devidp))
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "Microsoft Graph" in wrong.json()["error_description"]
    forged = httpx.get(url, headers={"Authorization": "Bearer a.b.c"}, verify=tls(devidp))
    assert forged.status_code == 401
