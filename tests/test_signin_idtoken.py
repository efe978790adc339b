"""The checks on a sign-in's ID token (entra_ciam.signin.idtoken), each at its limit.

The sign-in tests run these checks through whole flows; here each one is held to its boundary: the
several-audiences rule with and without ``azp``, ``exp`` and ``nbf`` to the second of the leeway,
and each refusal's reason (issue 16, point 8).
"""

from __future__ import annotations

from typing import Any

import pytest

from entra_ciam.signin.idtoken import LEEWAY, IdTokenError, check_id_token_claims

CLIENT = "9b8a7f6e-5d4c-4b3a-8f2e-1d0c9b8a7f6e"
OTHER = "11111111-2222-4333-8444-555555555555"
TENANT = "7d3e1c2a-5b4f-4a8e-9c6d-1f2e3d4c5b6a"
ISSUER = f"https://{TENANT}.ciamlogin.com/{TENANT}/v2.0"
NOW = 1_800_000_000


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "tid": TENANT,
        "sub": "pairwise-sub",
        "oid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 3600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def check(token_claims: dict[str, Any], **options: Any) -> None:
    settings: dict[str, Any] = {
        "client_id": CLIENT,
        "issuer": ISSUER,
        "tenant_id": TENANT,
        "now": NOW,
    }
    settings.update(options)
    check_id_token_claims(token_claims, **settings)


def refused(token_claims: dict[str, Any], reason: str, **options: Any) -> None:
    with pytest.raises(IdTokenError, match=reason):
        check(token_claims, **options)


def test_a_good_id_token_passes() -> None:
    check(claims())
    check(claims(tid=None))  # tid is checked when present
    check(claims(sub=None))  # a user named by oid alone
    check(claims(oid=None))
    check(claims(nbf=None))
    check(claims(), issuer=None, tenant_id=None)  # nothing configured to compare with


def test_no_id_token() -> None:
    refused({}, "returned no ID token")


def test_issuer() -> None:
    refused(claims(iss="https://evil.example/v2.0"), "another authority")
    refused(claims(iss=None), "another authority")


def test_audience() -> None:
    refused(claims(aud=OTHER), "another application")
    refused(claims(aud=[OTHER]), "another application")
    refused(claims(aud=None), "another application")
    check(claims(aud=[CLIENT]))  # one audience in a list: no azp needed


def test_several_audiences_need_this_app_as_azp() -> None:
    """OpenID Connect Core 3.1.3.7 points 3 and 4."""
    refused(claims(aud=[CLIENT, OTHER]), "several audiences but not this app as azp")
    refused(claims(aud=[CLIENT, OTHER], azp=OTHER), "several audiences")
    check(claims(aud=[CLIENT, OTHER], azp=CLIENT))
    check(claims(aud=[OTHER, CLIENT], azp=CLIENT))


def test_tenant() -> None:
    refused(claims(tid=OTHER), "another tenant")
    check(claims(tid=TENANT.upper()))  # GUIDs compare without case


def test_a_user() -> None:
    refused(claims(sub=None, oid=None), "names no user")
    refused(claims(sub="", oid=""), "names no user")


def test_expiry_to_the_second_of_the_leeway() -> None:
    assert LEEWAY == 120
    check(claims(exp=NOW - LEEWAY + 1))
    refused(claims(exp=NOW - LEEWAY), "expired")
    refused(claims(exp=NOW + 10), "expired", leeway=0, now=NOW + 10)
    check(claims(exp=NOW + 10), leeway=0, now=NOW + 9)
    refused(claims(exp=None), "carries no expiry")
    refused(claims(exp="soon"), "carries no expiry")
    refused(claims(exp=True), "carries no expiry")  # a bool is not a time
    check(claims(exp=float(NOW + 60)))


def test_not_before_to_the_second_of_the_leeway() -> None:
    check(claims(nbf=NOW + LEEWAY))
    refused(claims(nbf=NOW + LEEWAY + 1), "not valid yet")
    check(claims(nbf=NOW + 5), leeway=5)
    refused(claims(nbf=NOW + 6), "not valid yet", leeway=5)
    check(claims(nbf=True))  # not a time: ignored, exp still decides
    check(claims(nbf="later"))


def test_the_current_time_is_used_when_none_is_given() -> None:
    import time

    now = int(time.time())
    check_id_token_claims(
        claims(exp=now + 60, nbf=now), client_id=CLIENT, issuer=ISSUER, tenant_id=TENANT
    )
    with pytest.raises(IdTokenError, match="expired"):
        check_id_token_claims(
            claims(exp=now - 600), client_id=CLIENT, issuer=ISSUER, tenant_id=TENANT
        )
