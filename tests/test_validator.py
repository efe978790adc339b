"""AccessTokenValidator rules: every rejection, the accepted shapes, the caches and key rotation.

Keys and discovery come from a loopback OIDCStub; every rejection is checked through both
``validate`` and ``validate_async`` and must be a 401 ``invalid_token`` naming its reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import entra_ciam.validator as validator_module
from entra_ciam import AccessTokenValidator, Claims, ConfigError, EntraConfig, InvalidTokenError
from entra_ciam.errors import AuthError
from tests.support.clock import Clock, at_wall_time
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.tokens import (
    API_CLIENT_ID,
    TENANT_ID,
    USER_OID,
    SigningKey,
    TokenFactory,
    b64url,
    b64url_json,
)

OTHER_GUID = "11111111-2222-4333-8444-555555555555"


@dataclass
class Tenant:
    factory: TokenFactory
    stub: OIDCStub
    validator: AccessTokenValidator
    clock: Clock

    @property
    def jwks_hits(self) -> int:
        return self.stub.hits[f"/{TENANT_ID}/discovery/v2.0/keys"]

    @property
    def metadata_hits(self) -> int:
        return self.stub.hits[f"/{TENANT_ID}/v2.0/.well-known/openid-configuration"]

    def signed(self, header: dict[str, Any], payload: bytes) -> str:
        signing_input = f"{b64url_json(header)}.{b64url(payload)}".encode()
        return f"{signing_input.decode()}.{b64url(self.factory.key.sign(signing_input))}"


@pytest.fixture
def tenant(served: tuple[TokenFactory, OIDCStub]) -> Tenant:
    """A fresh validator (empty caches) on the module's stub, reset to its first key."""
    factory, stub = served
    stub.jwks = factory.jwks()
    stub.fault = None
    stub.hits.clear()
    clock = Clock(5000.0)
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, clock=clock)
    return Tenant(factory, stub, validator, clock)


def rejected(tenant: Tenant, token: object, match: str) -> InvalidTokenError:
    """Assert both entry points refuse ``token`` with 401 invalid_token and a reason matching."""
    errors: list[AuthError] = []
    for run in (
        lambda: tenant.validator.validate(token),  # type: ignore[arg-type]
        lambda: asyncio.run(tenant.validator.validate_async(token)),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidTokenError, match=match) as info:
            run()
        errors.append(info.value)
    for error in errors:
        assert error.status_code == 401
        assert error.error == "invalid_token"
        assert error.www_authenticate is not None
        assert 'error="invalid_token"' in error.www_authenticate
        if isinstance(token, str) and len(token) > 20:
            for part in token.split("."):
                if len(part) > 20:
                    assert part not in error.description
                    assert part not in error.www_authenticate
    assert errors[0].description == errors[1].description
    return errors[0]


def now() -> int:
    return int(time.time())


# -- accepted tokens ----------------------------------------------------------------------------


def test_user_token(tenant: Tenant) -> None:
    claims = tenant.validator.validate(tenant.factory.mint())
    assert isinstance(claims, Claims)
    assert claims.scopes == {"Todolist.Read", "Todolist.ReadWrite"}
    assert claims.roles == frozenset()
    assert claims.oid == USER_OID
    assert claims.tid == TENANT_ID
    assert claims.name == "Ada Lovelace"
    assert claims.preferred_username == "ada@example.com"
    assert claims.sub is not None
    assert not claims.is_app_only
    assert claims["aud"] == API_CLIENT_ID
    assert claims.expires_at is not None
    assert claims.expires_at.timestamp() == claims["exp"]


async def test_user_token_async(tenant: Tenant) -> None:
    claims = await tenant.validator.validate_async(tenant.factory.mint())
    assert claims.scopes == {"Todolist.Read", "Todolist.ReadWrite"}


def test_app_only_token(tenant: Tenant) -> None:
    token = tenant.factory.mint(tenant.factory.app_claims(["Todolist.Read.All", "Other"]))
    claims = tenant.validator.validate(token)
    assert claims.is_app_only
    assert claims.roles == {"Todolist.Read.All", "Other"}
    assert claims.scopes == frozenset()
    assert claims["roles"] == ("Todolist.Read.All", "Other")


def test_app_token_without_idtyp_is_app_only_by_roles(tenant: Tenant) -> None:
    claims = tenant.validator.validate(tenant.factory.mint(tenant.factory.app_claims(idtyp=None)))
    assert claims.is_app_only
    assert claims.oid == claims.sub


def test_user_token_with_roles_is_not_app_only(tenant: Tenant) -> None:
    """Issue 16, point 2: a user's token with app roles and no scp is a user token."""
    factory = tenant.factory
    for claims in (
        factory.claims(scp=None, roles=["Todolist.ReadWrite.All"], idtyp="user"),
        factory.claims(scp=None, roles=["Todolist.ReadWrite.All"]),  # sub pairwise != oid
        factory.app_claims(idtyp="user"),  # an app's shape, but the token says "user"
    ):
        validated = tenant.validator.validate(factory.mint(claims))
        assert validated.roles == set(claims["roles"])
        assert not validated.is_app_only


def test_leeway_accepts_small_clock_skew(tenant: Tenant) -> None:
    token = tenant.factory.mint(exp=now() - 20, nbf=now() + 20, iat=now() + 20)
    assert tenant.validator.validate(token).oid == USER_OID
    strict = AccessTokenValidator(tenant.stub.authority, API_CLIENT_ID, leeway=0)
    with pytest.raises(InvalidTokenError, match="expired"):
        strict.validate(token)


NOW = 1_800_000_000.0  # a fixed wall-clock reading for the tests that need the exact second


def test_expiry_to_the_edge_of_the_leeway(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused from ``exp + leeway`` on (60 s by default), accepted a moment before."""
    token = tenant.factory.mint(exp=int(NOW), nbf=int(NOW) - 600, iat=int(NOW) - 600)
    at_wall_time(monkeypatch, NOW - 0.5)
    cached = tenant.validator.validate(token)
    assert tenant.validator.validate(token) is cached
    at_wall_time(monkeypatch, NOW)  # the cache serves a token until its exp, no further...
    within_leeway = tenant.validator.validate(token)
    assert within_leeway is not cached  # ...then it is validated again, and still good
    at_wall_time(monkeypatch, NOW + 59.999)
    assert tenant.validator.validate(token).oid == USER_OID
    at_wall_time(monkeypatch, NOW + 60)
    rejected(tenant, token, "the token expired at 2027-01-15T08:00:00Z")
    strict = AccessTokenValidator(tenant.stub.authority, API_CLIENT_ID, leeway=0)
    with pytest.raises(InvalidTokenError, match="expired"):
        strict.validate(tenant.factory.mint(exp=int(NOW)))
    at_wall_time(monkeypatch, NOW - 0.001)
    assert strict.validate(tenant.factory.mint(exp=int(NOW))).oid == USER_OID


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_before_and_issued_at_to_the_edge_of_the_leeway(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, claim: str
) -> None:
    at_wall_time(monkeypatch, NOW)
    others = {"nbf": None, "iat": None, "exp": int(NOW) + 3600}
    edge = tenant.factory.mint(**{**others, claim: NOW + 60})
    first = tenant.validator.validate(edge)
    assert first.oid == USER_OID
    assert tenant.validator.validate(edge) is first  # remembered from nbf/iat - leeway on
    reason = "not valid before" if claim == "nbf" else "issued in the future"
    rejected(tenant, tenant.factory.mint(**{**others, claim: NOW + 60.001}), reason)
    # Neither is required.
    assert tenant.validator.validate(tenant.factory.mint(**others)).oid == USER_OID


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_cached_token_is_not_valid_before_its_nbf_or_iat(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, claim: str
) -> None:
    """The cache remembers the window: each of nbf and iat alone bounds it."""
    at_wall_time(monkeypatch, NOW)
    times: dict[str, Any] = {"nbf": None, "iat": None, "exp": int(NOW) + 3600, claim: NOW + 30}
    token = tenant.factory.mint(**times)
    assert tenant.validator.validate(token).oid == USER_OID  # within the leeway
    at_wall_time(monkeypatch, NOW - 31)  # the wall clock steps back
    rejected(tenant, token, "not valid before|issued in the future")


@pytest.mark.parametrize(
    ("value", "valid"),
    [(0, True), (-1, False), (253402300799, True), (253402300800, False), (1.5, True)],
)
def test_time_claims_are_times(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, value: float, valid: bool
) -> None:
    """Between 0 and the last second of year 9999, in both directions."""
    at_wall_time(monkeypatch, NOW)
    for claim in ("exp", "nbf", "iat"):
        times: dict[str, Any] = {"exp": int(NOW) + 3600, "nbf": None, "iat": None}
        token = tenant.factory.mint(**{**times, claim: value})
        if valid:
            try:
                tenant.validator.validate(token)
            except InvalidTokenError as err:  # expired, not yet valid: but a valid time
                assert "not a valid time" not in err.description
        else:
            rejected(tenant, token, f"the token {claim} claim is not a valid time")
    rejected(tenant, tenant.factory.mint(exp="soon"), "exp claim is not a valid time")
    rejected(tenant, tenant.factory.mint(exp=True), "exp claim is not a valid time")


def test_the_documented_defaults() -> None:
    """docs/api.md lists these; each decides what an unconfigured validator accepts."""
    import inspect

    parameters = inspect.signature(AccessTokenValidator).parameters
    defaults = {name: p.default for name, p in parameters.items() if p.default is not p.empty}
    assert defaults["leeway"] == 60
    assert defaults["cache_size"] == 4096
    assert defaults["algorithms"] == ("RS256",)
    assert defaults["allowed_versions"] == ("2.0",)
    assert defaults["accept_v1_audience"] is False
    assert defaults["verify"] is True
    validator = AccessTokenValidator("https://contoso.ciamlogin.com/", API_CLIENT_ID)
    assert validator.leeway == 60.0
    assert validator.allowed_versions == {"2.0"}
    assert validator.audiences == {API_CLIENT_ID}


def test_claim_values_are_quoted_short(tenant: Tenant) -> None:
    long_issuer = "https://evil.example/" + "i" * 300
    shown = repr(long_issuer[:200] + "...")
    rejected(tenant, tenant.factory.mint(iss=long_issuer), f"^issuer {re.escape(shown)} is not")
    exact = "https://evil.example/" + "i" * (200 - 21)
    assert len(exact) == 200
    rejected(tenant, tenant.factory.mint(iss=exact), f"^issuer {re.escape(repr(exact))} is not")
    one_more = exact + "j"
    shown = repr(exact + "...")
    rejected(tenant, tenant.factory.mint(iss=one_more), f"^issuer {re.escape(shown)} is not")


def test_audience_list_and_v1_audience(tenant: Tenant) -> None:
    v1 = tenant.factory.mint(aud=f"api://{API_CLIENT_ID}")
    rejected(tenant, v1, "audience 'api://")
    both = AccessTokenValidator(tenant.stub.authority, [API_CLIENT_ID], accept_v1_audience=True)
    assert both.validate(v1).oid == USER_OID
    assert both.validate(tenant.factory.mint()).oid == USER_OID
    listed = tenant.factory.mint(aud=[OTHER_GUID, API_CLIENT_ID])
    assert tenant.validator.validate(listed)["aud"] == (OTHER_GUID, API_CLIENT_ID)


def test_v1_tokens_when_allowed(tenant: Tenant) -> None:
    token = tenant.factory.mint(ver="1.0")
    rejected(tenant, token, "version '1.0' is not accepted")
    v1 = AccessTokenValidator(tenant.stub.authority, API_CLIENT_ID, allowed_versions=("1.0", "2.0"))
    assert v1.validate(token)["ver"] == "1.0"


def test_issuer_and_tenant_can_be_pinned(tenant: Tenant) -> None:
    token = tenant.factory.mint()
    pinned = AccessTokenValidator(
        metadata_url=tenant.stub.metadata_url,
        audience=API_CLIENT_ID,
        issuer=tenant.factory.issuer,
        tenant_id=TENANT_ID.upper(),
    )
    assert pinned.validate(token).tid == TENANT_ID
    other_issuer = AccessTokenValidator(
        metadata_url=tenant.stub.metadata_url,
        audience=API_CLIENT_ID,
        issuer=f"https://{TENANT_ID}.ciamlogin.com/{TENANT_ID}/v2.0",
    )
    with pytest.raises(InvalidTokenError, match=r"issuer .* is not accepted"):
        other_issuer.validate(token)
    other_tenant = AccessTokenValidator(
        metadata_url=tenant.stub.metadata_url, audience=API_CLIENT_ID, tenant_id=OTHER_GUID
    )
    with pytest.raises(InvalidTokenError, match=r"tenant .* is not accepted"):
        other_tenant.validate(token)


def test_from_config(tenant: Tenant) -> None:
    config = EntraConfig(authority=tenant.stub.authority, api_client_id=API_CLIENT_ID)
    validator = AccessTokenValidator.from_config(config)
    assert validator.metadata_url == tenant.stub.metadata_url
    assert validator.tenant_id == TENANT_ID
    assert validator.validate(tenant.factory.mint()).oid == USER_OID
    with pytest.raises(ConfigError, match="ENTRA_API_CLIENT_ID"):
        AccessTokenValidator.from_config(EntraConfig(authority=tenant.stub.authority))


# -- every rejection ----------------------------------------------------------------------------


def test_reject_alg_none(tenant: Tenant) -> None:
    token = f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(tenant.factory.claims())}."
    rejected(tenant, token, "alg none")


def test_reject_alg_not_allowed(tenant: Tenant) -> None:
    token = tenant.factory.mint(header=tenant.factory.header(alg="RS384"))
    rejected(tenant, token, "algorithm 'RS384' is not accepted")


def test_reject_hmac_signed_with_the_public_key(tenant: Tenant) -> None:
    pem = tenant.factory.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = tenant.factory.header(alg="HS256")
    signing_input = f"{b64url_json(head)}.{b64url_json(tenant.factory.claims())}".encode()
    mac = hmac.new(pem, signing_input, hashlib.sha256).digest()
    rejected(tenant, f"{signing_input.decode()}.{b64url(mac)}", "HMAC")


def test_reject_jku_header(tenant: Tenant) -> None:
    header = tenant.factory.header(jku="https://attacker.example/keys")
    rejected(tenant, tenant.factory.mint(header=header), "jku")


def test_reject_x5u_header(tenant: Tenant) -> None:
    header = tenant.factory.header(x5u="https://attacker.example/cert.pem")
    rejected(tenant, tenant.factory.mint(header=header), "x5u")


def test_reject_jwk_header(tenant: Tenant) -> None:
    attacker = SigningKey(kid=tenant.factory.key.kid)
    header = tenant.factory.header(jwk=attacker.jwk())
    rejected(tenant, tenant.factory.mint(header=header, key=attacker), "jwk header")


def test_reject_crit_header(tenant: Tenant) -> None:
    header = tenant.factory.header(crit=["exp"], exp=1)
    rejected(tenant, tenant.factory.mint(header=header), "crit")


def test_reject_missing_kid(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(header={"alg": "RS256", "typ": "JWT"}), "no kid")


def test_reject_unknown_kid(tenant: Tenant) -> None:
    tenant.validator.validate(tenant.factory.mint())  # keys are known
    stranger = SigningKey(kid="not-a-published-kid")
    error = rejected(tenant, tenant.factory.mint(key=stranger), "key is not one of the issuer's")
    assert "not-a-published-kid" not in str(error.www_authenticate)  # never echoed nor logged
    assert tenant.jwks_hits == 1  # within 5 minutes of the last fetch: no refresh


def test_reject_bad_signature(tenant: Tenant) -> None:
    forger = SigningKey(kid=tenant.factory.key.kid)
    rejected(tenant, tenant.factory.mint(key=forger), "signature is invalid")


def test_reject_tampered_payload(tenant: Tenant) -> None:
    head, _body, sig = tenant.factory.mint(scp="Todolist.Read").split(".")
    forged = b64url_json(tenant.factory.claims(scp="Todolist.ReadWrite"))
    rejected(tenant, f"{head}.{forged}.{sig}", "signature is invalid")


def test_reject_expired(tenant: Tenant) -> None:
    error = rejected(tenant, tenant.factory.mint(exp=now() - 3600), "the token expired at 20")
    assert error.description.endswith("Z")


def test_reject_missing_exp(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(exp=None), "no exp claim")
    rejected(tenant, tenant.factory.mint(exp="tomorrow"), "exp claim is not a valid time")
    rejected(tenant, tenant.factory.mint(exp=True), "exp claim is not a valid time")
    rejected(tenant, tenant.factory.mint(exp=10**20), "exp claim is not a valid time")


def test_reject_nbf_in_future(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(nbf=now() + 3600), "not valid before 20")


def test_reject_iat_in_future(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(iat=now() + 3600), "issued in the future")


def test_reject_wrong_iss(tenant: Tenant) -> None:
    iss = f"https://{OTHER_GUID}.ciamlogin.com/{OTHER_GUID}/v2.0"
    rejected(tenant, tenant.factory.mint(iss=iss), f"issuer '{iss}' is not accepted")
    rejected(tenant, tenant.factory.mint(iss=None), "no iss")


def test_reject_wrong_aud(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(aud=OTHER_GUID), f"audience '{OTHER_GUID}' is not")
    rejected(tenant, tenant.factory.mint(aud=None), "no aud")
    rejected(tenant, tenant.factory.mint(aud=[]), "no aud")
    # Issue 16, point 8: a list of audiences that does not name this API.
    third = "22222222-3333-4444-8555-666666666666"
    rejected(
        tenant,
        tenant.factory.mint(aud=[OTHER_GUID, third]),
        f"audience '{OTHER_GUID} {third}' is not accepted",
    )
    rejected(tenant, tenant.factory.mint(aud=[API_CLIENT_ID, 7]), "no aud")
    rejected(tenant, tenant.factory.mint(aud=7), "no aud")


def test_reject_wrong_tid(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(tid=OTHER_GUID), f"tenant '{OTHER_GUID}' is not")


def test_reject_missing_tid(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(tid=None), "no tid")


def test_reject_ver_1(tenant: Tenant) -> None:
    v1 = rejected(tenant, tenant.factory.mint(ver="1.0"), "version '1.0' is not accepted")
    assert "set requestedAccessTokenVersion (accessTokenAcceptedVersion) to 2" in v1.description
    rejected(tenant, tenant.factory.mint(ver=None), r"version \(none\) is not accepted")
    for other in ("2.1", "3.0", "2"):
        rejected(tenant, tenant.factory.mint(ver=other), f"^token version '{other}' is not")
    rejected(tenant, tenant.factory.mint(ver=2.0), r"^token version \(none\) is not")


def test_reject_no_scp_and_no_roles(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(scp=None), "neither scp")


def test_reject_malformed_scp_and_roles(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(scp=["a"]), "scp claim")
    rejected(tenant, tenant.factory.mint(scp=" "), "scp claim")
    rejected(tenant, tenant.factory.mint(tenant.factory.app_claims(roles=[1])), "roles claim")


def signed_payload(tenant: Tenant, payload: dict[str, Any]) -> str:
    """A correctly signed token carrying ``payload`` as is (JSON nulls included)."""
    return tenant.signed(tenant.factory.header(), json.dumps(payload).encode())


@pytest.mark.parametrize("scp", [None, ["Todolist.Read"], 1, 0, True, {"a": 1}, ""])
@pytest.mark.parametrize("kind", ["user", "app"])
def test_reject_non_string_scp(tenant: Tenant, scp: object, kind: str) -> None:
    """Issue 16, point 6: ``"scp": null`` beside roles passed and was then read as a user token
    with no scopes; a scp that is present must be a non-empty string, whatever else is there."""
    base = tenant.factory.claims() if kind == "user" else tenant.factory.app_claims()
    rejected(tenant, signed_payload(tenant, {**base, "scp": scp}), "scp claim")


@pytest.mark.parametrize("roles", [None, "Todolist.Read.All", 1, {"r": 1}, ["ok", None]])
def test_reject_non_list_roles(tenant: Tenant, roles: object) -> None:
    payload = {**tenant.factory.app_claims(), "roles": roles}
    rejected(tenant, signed_payload(tenant, payload), "roles claim")


@pytest.mark.parametrize("name", ["sub", "oid", "tid", "azp", "idtyp"])
@pytest.mark.parametrize("value", [None, 7, ["x"], {"x": 1}, True])
def test_reject_non_string_identity_claims(tenant: Tenant, name: str, value: object) -> None:
    """Issue 16, point 6: an API keys data on these; a number or list there is malformed."""
    payload = {**tenant.factory.claims(), name: value}
    match = "no tid" if name == "tid" else f"{name} claim is not a string"
    rejected(tenant, signed_payload(tenant, payload), match)


def test_optional_identity_claims_may_be_absent(tenant: Tenant) -> None:
    claims = tenant.validator.validate(tenant.factory.mint(sub=None, azp=None))
    assert claims.sub is None and "azp" not in claims


def test_reject_duplicate_claims(tenant: Tenant) -> None:
    """Issue 16, point 6: two ``scp`` members, the second widening the first, are refused."""
    body = json.dumps(tenant.factory.claims(scp="Todolist.Read"))[:-1]
    payload = (body + ', "scp": "Todolist.ReadWrite"}').encode()
    rejected(
        tenant, tenant.signed(tenant.factory.header(), payload), "payload names a member twice"
    )


def test_reject_malformed_base64(tenant: Tenant) -> None:
    head, body, sig = tenant.factory.mint().split(".")
    rejected(tenant, f"{head}x.{body}.{sig}"[: len(head) + 1] + "+" + f".{body}.{sig}", "base64")
    # a payload segment signed as is, so only its decoding can fail
    signing_input = f"{head}.abcde".encode()
    token = f"{signing_input.decode()}.{b64url(tenant.factory.key.sign(signing_input))}"
    rejected(tenant, token, "payload is not valid base64url")


def test_reject_malformed_json(tenant: Tenant) -> None:
    header = tenant.factory.header()
    rejected(tenant, tenant.signed(header, b"{not json"), "payload is not valid JSON")
    rejected(tenant, tenant.signed(header, b'["not", "an object"]'), "not a JSON object")
    _h, body, sig = tenant.factory.mint().split(".")
    rejected(tenant, f"{b64url(b'{alg: RS256')}.{body}.{sig}", "header is not valid JSON")


def test_reject_token_over_16_kib(tenant: Tenant) -> None:
    rejected(tenant, tenant.factory.mint(padding="x" * (17 * 1024)), "longer than 16384")


def test_reject_jwe(tenant: Tenant) -> None:
    head = b64url_json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": tenant.factory.key.kid})
    parts = [head, b64url(b"k" * 256), b64url(b"i" * 12), b64url(b"c" * 64), b64url(b"t" * 16)]
    rejected(tenant, ".".join(parts), "encrypted tokens")


def test_reject_nested_jwt(tenant: Tenant) -> None:
    inner = tenant.factory.mint()
    rejected(tenant, tenant.signed(tenant.factory.header(cty="JWT"), inner.encode()), "nested")


@pytest.mark.parametrize("token", ["", "Bearer", None, 42, b"a.b.c", "a.b.c", "\x00.\x00.\x00"])
def test_reject_garbage(tenant: Tenant, token: object) -> None:
    rejected(tenant, token, ".")


def test_issuer_and_tenant_come_from_discovery_when_not_configured(tenant: Tenant) -> None:
    """With only a metadata URL, the discovered issuer names the tenant GUID to check tid with."""
    validator = AccessTokenValidator(metadata_url=tenant.stub.metadata_url, audience=API_CLIENT_ID)
    assert validator.tenant_id is None and validator.issuer is None
    assert validator.validate(tenant.factory.mint()).tid == TENANT_ID
    with pytest.raises(InvalidTokenError, match=f"tenant '{OTHER_GUID}' is not accepted"):
        validator.validate(tenant.factory.mint(tid=OTHER_GUID))
    with pytest.raises(InvalidTokenError, match=r"issuer 'https://evil\.example/v2\.0' is not"):
        validator.validate(tenant.factory.mint(iss="https://evil.example/v2.0"))


def test_reject_unknown_tenant_when_nothing_names_it() -> None:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        factory.issuer = f"http://127.0.0.1:{stub.port}/contoso.example/v2.0"
        validator = AccessTokenValidator(metadata_url=stub.metadata_url, audience=API_CLIENT_ID)
        with pytest.raises(InvalidTokenError, match="cannot check the token tenant"):
            validator.validate(factory.mint())


# -- the validated-token cache ------------------------------------------------------------------


def test_repeated_token_is_answered_from_the_cache(tenant: Tenant) -> None:
    token = tenant.factory.mint()
    first = tenant.validator.validate(token)
    assert tenant.validator.validate(token) is first
    assert asyncio.run(tenant.validator.validate_async(token)) is first
    # a different token with the same claims is a different entry
    assert tenant.validator.validate(tenant.factory.mint()) is not first


def test_cached_claims_cannot_be_changed(tenant: Tenant) -> None:
    token = tenant.factory.mint(tenant.factory.app_claims(["Todolist.Read.All"], amr=["pwd"]))
    claims = tenant.validator.validate(token)
    with pytest.raises(TypeError):
        claims["roles"] = ["admin"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        claims.roles = frozenset({"admin"})  # type: ignore[misc]
    with pytest.raises(AttributeError):
        claims["roles"].append("admin")
    assert tenant.validator.validate(token).roles == {"Todolist.Read.All"}


def test_cached_token_time_claims_are_checked_again(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tenant.factory.mint(exp=now() + 120)
    assert tenant.validator.validate(token).oid == USER_OID
    later = time.time() + 120 + 61  # past exp and the 60 s leeway

    class Later:
        @staticmethod
        def time() -> float:
            return later

    monkeypatch.setattr(validator_module, "time", Later)
    with pytest.raises(InvalidTokenError, match="expired"):
        tenant.validator.validate(token)


def test_cache_is_bounded(tenant: Tenant) -> None:
    small = AccessTokenValidator(tenant.stub.authority, API_CLIENT_ID, cache_size=8)
    tokens = [tenant.factory.mint() for _ in range(20)]
    for token in tokens:
        small.validate(token)
    assert len(small._cache) <= 8
    assert small.validate(tokens[-1]) is small.validate(tokens[-1])
    off = AccessTokenValidator(tenant.stub.authority, API_CLIENT_ID, cache_size=0)
    assert off.validate(tokens[0]) is not off.validate(tokens[0])


# -- key rotation and unknown kids --------------------------------------------------------------


def test_key_rotation(tenant: Tenant) -> None:
    old_token = tenant.factory.mint()
    assert tenant.validator.validate(old_token).oid == USER_OID
    new_key = SigningKey()
    tenant.stub.jwks = {"keys": [new_key.jwk()]}  # the tenant rolls its key
    new_token = tenant.factory.mint(key=new_key)
    # within 5 minutes of the last fetch the new kid is refused without asking again
    tenant.clock.now += 60
    rejected(tenant, new_token, "not one of the issuer's keys")
    assert tenant.jwks_hits == 1
    tenant.clock.now += 241
    assert tenant.validator.validate(new_token).oid == USER_OID
    assert tenant.jwks_hits == 2
    # the old key is gone: its tokens (even one already validated and cached) are refused now
    rejected(tenant, old_token, "not one of the issuer's keys")
    assert tenant.jwks_hits == 2


def test_key_rotation_with_overlap_is_seamless(tenant: Tenant) -> None:
    old_token = tenant.factory.mint()
    tenant.validator.validate(old_token)
    new_key = SigningKey()
    tenant.stub.jwks = tenant.factory.jwks(new_key)  # old and new published side by side
    tenant.clock.now += 301
    assert tenant.validator.validate(tenant.factory.mint(key=new_key)).oid == USER_OID
    assert tenant.validator.validate(old_token).oid == USER_OID
    assert tenant.jwks_hits == 2


def random_kid_token(factory: TokenFactory, rng: random.Random) -> str:
    """A token naming a random kid; its signature is never checked, so none is computed."""
    header = factory.header(kid=f"{rng.getrandbits(64):016x}")
    return f"{b64url_json(header)}.{b64url_json(factory.claims())}.{b64url(os.urandom(256))}"


def test_unknown_kid_storm_causes_at_most_one_fetch(tenant: Tenant) -> None:
    rng = random.Random(7)
    tokens = [random_kid_token(tenant.factory, rng) for _ in range(1000)]
    tenant.validator.validate(tenant.factory.mint())
    assert tenant.jwks_hits == 1
    tenant.clock.now += 301  # past the 5 minutes: the first unknown kid may refresh once
    failures = 0
    for token in tokens:
        try:
            tenant.validator.validate(token)
        except InvalidTokenError:
            failures += 1
    assert failures == 1000
    assert tenant.jwks_hits == 2
    assert tenant.metadata_hits == 1


def test_unknown_kid_storm_in_threads_and_tasks(tenant: Tenant) -> None:
    rng = random.Random(8)
    tokens = [random_kid_token(tenant.factory, rng) for _ in range(1000)]
    tenant.validator.validate(tenant.factory.mint())
    tenant.clock.now += 301
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        for token in chunk:
            try:
                tenant.validator.validate(token)
                outcome = "accepted"
            except InvalidTokenError:
                outcome = "invalid"
            except Exception as exc:  # pragma: no cover - reported by the assertion below
                outcome = repr(exc)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(tokens[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("invalid") == 1000, set(outcomes)
    assert tenant.jwks_hits == 2

    async def storm() -> list[object]:
        return await asyncio.gather(
            *(tenant.validator.validate_async(t) for t in tokens), return_exceptions=True
        )

    tenant.clock.now += 301
    results = asyncio.run(storm())
    assert all(isinstance(r, InvalidTokenError) for r in results)
    assert tenant.jwks_hits == 3


# -- configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"audience": API_CLIENT_ID}, "exactly one of authority"),
        (
            {
                "authority": "https://contoso.ciamlogin.com/",
                "metadata_url": "https://x/.well-known/openid-configuration",
                "audience": API_CLIENT_ID,
            },
            "exactly one of authority",
        ),
        ({"authority": "https://contoso.ciamlogin.com/"}, "audience is required"),
        ({"authority": "https://contoso.ciamlogin.com/", "audience": ""}, "audience must be"),
        ({"authority": "https://contoso.ciamlogin.com/", "audience": []}, "audience must be"),
        ({"authority": "http://contoso.example/t", "audience": "a"}, "https"),
        ({"metadata_url": "http://contoso.example/x", "audience": "a"}, "https"),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "verify": False},
            "verify=False",
        ),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "verify": "/no/such"},
            "^verify must be True or the path of a CA bundle, got '/no/such'",
        ),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "verify": 1},
            "^verify must be True or the path of a CA bundle, got 1",
        ),
        (
            {
                "authority": "https://contoso.ciamlogin.com/",
                "audience": "a",
                "algorithms": ["HS256"],
            },
            "not supported",
        ),
        (
            {
                "authority": "https://contoso.ciamlogin.com/",
                "audience": "a",
                "algorithms": ["none"],
            },
            "not supported",
        ),
        ({"authority": "https://contoso.ciamlogin.com/", "audience": "a", "leeway": -1}, "leeway"),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "leeway": 600.5},
            "leeway must be between 0 and 600 seconds, got 600.5",
        ),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "leeway": -0.5},
            "leeway must be between 0 and 600 seconds, got -0.5",
        ),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "leeway": "60"},
            "leeway",
        ),
        (
            {"authority": "https://contoso.ciamlogin.com/", "audience": "a", "tenant_id": "x"},
            "tenant_id must be the tenant GUID",
        ),
        (
            {
                "authority": "https://contoso.ciamlogin.com/",
                "audience": "a",
                "issuer": "http://contoso.example/",
            },
            "issuer must use https",
        ),
        (
            {
                "authority": "https://contoso.ciamlogin.com/",
                "audience": "a",
                "allowed_versions": [],
            },
            "allowed_versions",
        ),
    ],
)
def test_configuration_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AccessTokenValidator(**kwargs)


@pytest.mark.parametrize("leeway", [0, 0.5, 600, 599.5])
def test_leeway_limits_are_inclusive(leeway: float) -> None:
    validator = AccessTokenValidator("https://contoso.ciamlogin.com/", "a", leeway=leeway)
    assert validator.leeway == leeway


def test_every_authority_form_finds_its_metadata() -> None:
    guid = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
    forms = {
        "https://contoso.ciamlogin.com/": "https://contoso.ciamlogin.com/contoso.onmicrosoft.com",
        f"https://contoso.ciamlogin.com/{guid}": f"https://contoso.ciamlogin.com/{guid}",
        f"https://login.contoso.com/{guid}/v2.0": f"https://login.contoso.com/{guid}",
        f"https://login.microsoftonline.com/{guid}": f"https://login.microsoftonline.com/{guid}",
    }
    for authority, base in forms.items():
        validator = AccessTokenValidator(authority, API_CLIENT_ID)
        assert validator.metadata_url == f"{base}/v2.0/.well-known/openid-configuration"
    assert AccessTokenValidator(f"https://x.ciamlogin.com/{guid}", "a").tenant_id == guid


def test_repr_names_no_secret() -> None:
    validator = AccessTokenValidator("https://contoso.ciamlogin.com/", API_CLIENT_ID)
    assert "contoso" in repr(validator)


# -- the last-resort net: nothing but AuthError leaves validate() --------------------------------


class BrokenClock:
    """A monotonic clock that fails, as one borrowed from a torn-down test harness or a frozen-
    time library might: the validator's key cache asks it on every lookup."""

    def __call__(self) -> float:
        raise RuntimeError(f"clock gone; it was asked about {self.secret}")

    secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_unexpected_error_is_a_401_naming_nothing(
    served: tuple[TokenFactory, OIDCStub], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """DESIGN.md: validation never raises anything but AuthError subclasses. A RuntimeError from
    the configured clock, deep in the key cache, comes out as 401 "could not be validated",
    logged with its type only (its text might quote the input). Without the net in validate()
    it would escape as a RuntimeError, a 500 in every framework."""
    factory, stub = served
    stub.jwks = factory.jwks()
    stub.fault = None
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, clock=BrokenClock())
    token = factory.mint()
    caplog.set_level(logging.ERROR, logger="entra_ciam.validator")
    with pytest.raises(InvalidTokenError) as info:
        if mode == "sync":
            validator.validate(token)
        else:
            asyncio.run(validator.validate_async(token))
    err = info.value
    assert err.description == "the token could not be validated"
    assert err.status_code == 401 and err.error == "invalid_token"
    assert err.__cause__ is None and err.__suppress_context__
    records = [r for r in caplog.records if r.name == "entra_ciam.validator"]
    assert [r.getMessage() for r in records] == ["unexpected RuntimeError while validating a token"]
    assert BrokenClock.secret not in caplog.text
