"""The validator over HTTP: a real loopback IdP (OIDCStub) and faults injected with respx.

Counts of discovery and JWKS fetches come from the stub's hit counters or respx's call counts,
never from our own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from entra_ciam import (
    AccessTokenValidator,
    Claims,
    ConfigError,
    InvalidTokenError,
    MetadataUnavailableError,
)
from tests.support.clock import Clock
from tests.support.oidc_stub import OIDCStub
from tests.support.rejections import internal_detail
from tests.support.tokens import API_CLIENT_ID, TENANT_ID, USER_OID, SigningKey, TokenFactory

AUTHORITY = f"https://contoso.ciamlogin.com/{TENANT_ID}"
METADATA_URL = f"{AUTHORITY}/v2.0/.well-known/openid-configuration"
JWKS_URI = f"{AUTHORITY}/discovery/v2.0/keys"
METADATA_PATH = f"/{TENANT_ID}/v2.0/.well-known/openid-configuration"
JWKS_PATH = f"/{TENANT_ID}/discovery/v2.0/keys"


@pytest.fixture
def stub(served: tuple[TokenFactory, OIDCStub]) -> OIDCStub:
    factory, stub = served
    stub.jwks = factory.jwks()
    stub.fault = None
    stub.slow_seconds = 5.0
    stub.hits.clear()
    return stub


def wait_for(condition: Any, seconds: float = 5.0) -> bool:
    """Poll ``condition`` (for background work) until true or ``seconds`` pass."""
    event = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        event.wait(0.02)
    return bool(condition())


# -- a real loopback IdP ------------------------------------------------------------------------


def test_sync_validation_over_loopback_http(stub: OIDCStub) -> None:
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
    claims = validator.validate(stub.factory.mint())
    assert claims.oid == USER_OID
    assert stub.hits[METADATA_PATH] == 1
    assert stub.hits[JWKS_PATH] == 1
    validator.validate(stub.factory.mint())
    assert stub.hits[JWKS_PATH] == 1


async def test_async_validation_over_loopback_http(stub: OIDCStub) -> None:
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
    claims = await validator.validate_async(stub.factory.mint())
    assert claims.oid == USER_OID
    assert stub.hits[METADATA_PATH] == 1
    assert stub.hits[JWKS_PATH] == 1


def test_200_concurrent_cold_validations_in_threads(stub: OIDCStub) -> None:
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
    tokens = [stub.factory.mint() for _ in range(20)]
    barrier = threading.Barrier(200, timeout=30)
    results: list[object] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            outcome: object = validator.validate(tokens[i % len(tokens)])
        except Exception as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 200
    assert all(isinstance(r, Claims) for r in results), {type(r) for r in results}
    assert stub.hits[METADATA_PATH] == 1
    assert stub.hits[JWKS_PATH] == 1


async def test_200_concurrent_cold_validations_in_asyncio(stub: OIDCStub) -> None:
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
    tokens = [stub.factory.mint() for _ in range(20)]
    results = await asyncio.gather(
        *(validator.validate_async(tokens[i % len(tokens)]) for i in range(200)),
        return_exceptions=True,
    )
    assert all(isinstance(r, Claims) for r in results), {type(r) for r in results}
    assert stub.hits[METADATA_PATH] == 1
    assert stub.hits[JWKS_PATH] == 1


@pytest.mark.parametrize("fault", ["500", "garbage"])
def test_jwks_fault_without_known_keys_is_503(stub: OIDCStub, fault: str) -> None:
    clock = Clock(100.0)
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, clock=clock, retry_interval=10)
    stub.fault = fault
    token = stub.factory.mint()
    with pytest.raises(MetadataUnavailableError) as info:
        validator.validate(token)
    assert info.value.status_code == 503
    assert ("Retry-After", "10") in info.value.headers
    # while the back-off lasts, requests fail fast without hammering the IdP
    for _ in range(20):
        with pytest.raises(MetadataUnavailableError):
            validator.validate(token)
    assert stub.hits[JWKS_PATH] == 1
    stub.fault = None
    clock.now += 10
    assert validator.validate(token).oid == USER_OID
    assert stub.hits[JWKS_PATH] == 2
    assert stub.hits[METADATA_PATH] == 1  # the discovery document was kept


async def test_slow_jwks_without_known_keys_is_503(stub: OIDCStub) -> None:
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, http_timeout=0.3)
    stub.fault = "slow"
    stub.slow_seconds = 1.5
    with pytest.raises(MetadataUnavailableError) as info:
        await validator.validate_async(stub.factory.mint())
    internal_detail(info.value, "Timeout")


@pytest.mark.parametrize("fault", ["500", "garbage", "slow"])
def test_jwks_fault_with_known_keys_keeps_serving(stub: OIDCStub, fault: str) -> None:
    clock = Clock(100.0)
    validator = AccessTokenValidator(
        stub.authority, API_CLIENT_ID, clock=clock, http_timeout=0.3, refresh_interval=3600
    )
    assert validator.validate(stub.factory.mint()).oid == USER_OID
    stub.fault = fault
    stub.slow_seconds = 1.0
    clock.now += 3601  # stale: the next request triggers a background refresh, which fails
    assert validator.validate(stub.factory.mint()).oid == USER_OID
    assert wait_for(lambda: stub.hits[JWKS_PATH] == 2)
    assert wait_for(lambda: not validator.metadata._fetching)
    assert validator.validate(stub.factory.mint()).oid == USER_OID
    # an unknown kid may trigger its own refresh, which also fails: still 401, keys still good
    clock.now += 301
    with pytest.raises(InvalidTokenError, match="not one of the issuer's keys"):
        validator.validate(stub.factory.mint(key=SigningKey()))
    assert validator.validate(stub.factory.mint()).oid == USER_OID


async def test_stale_keys_refresh_in_the_background_async(stub: OIDCStub) -> None:
    clock = Clock(100.0)
    validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, clock=clock)
    await validator.validate_async(stub.factory.mint())
    new_key = SigningKey()
    stub.jwks = stub.factory.jwks(new_key)
    clock.now += 13 * 3600
    # served at once from the stale keys, while a task fetches new ones
    assert (await validator.validate_async(stub.factory.mint())).oid == USER_OID
    for _ in range(250):
        if new_key.kid in validator.metadata.keys:
            break
        await asyncio.sleep(0.02)
    assert stub.hits[METADATA_PATH] == 2
    assert stub.hits[JWKS_PATH] == 2
    assert (await validator.validate_async(stub.factory.mint(key=new_key))).oid == USER_OID
    assert stub.hits[JWKS_PATH] == 2


def test_discovery_pointing_to_plain_http_is_refused(stub: OIDCStub) -> None:
    doc = stub.factory.discovery(stub.base, "http://keys.example.com/keys")
    stub.extra_routes[METADATA_PATH] = lambda: (200, json.dumps(doc).encode())
    try:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        with pytest.raises(MetadataUnavailableError) as info:
            validator.validate(stub.factory.mint())
        internal_detail(info.value, "jwks_uri must use https")
    finally:
        del stub.extra_routes[METADATA_PATH]


# -- faults injected with respx -----------------------------------------------------------------

FAULTS = {
    "down": httpx.ConnectError("connection refused"),
    "slow": httpx.ReadTimeout("timed out"),
    "garbage": httpx.Response(200, content=b"<html>maintenance</html>"),
    "error": httpx.Response(500, json={"error": "server_error"}),
    "empty": httpx.Response(200, json={"keys": []}),
}


@pytest.fixture
def idp() -> Iterator[tuple[TokenFactory, respx.Route, respx.Route]]:
    factory = TokenFactory()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        meta = router.get(METADATA_URL).respond(200, json=factory.discovery(AUTHORITY, JWKS_URI))
        keys = router.get(JWKS_URI).respond(200, json=factory.jwks())
        yield factory, meta, keys


def inject(route: respx.Route, fault: str) -> None:
    effect = FAULTS[fault]
    if isinstance(effect, httpx.Response):
        route.mock(return_value=effect)
    else:
        route.mock(side_effect=effect)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_respx_jwks_fault_without_known_keys(idp: Any, fault: str) -> None:
    factory, meta, keys = idp
    inject(keys, fault)
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID)
    with pytest.raises(MetadataUnavailableError) as info:
        validator.validate(factory.mint())
    assert info.value.status_code == 503
    assert info.value.retry_after >= 1
    assert keys.call_count == 1
    assert meta.call_count == 1


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_respx_jwks_fault_without_known_keys_async(idp: Any, fault: str) -> None:
    factory, _meta, keys = idp
    inject(keys, fault)
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID)
    results = await asyncio.gather(
        *(validator.validate_async(factory.mint()) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, MetadataUnavailableError) for r in results)
    assert keys.call_count == 1


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_respx_discovery_fault_without_anything_known(idp: Any, fault: str) -> None:
    factory, meta, keys = idp
    inject(meta, fault)
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID)
    with pytest.raises(MetadataUnavailableError) as info:
        validator.validate(factory.mint())
    internal_detail(info.value, "metadata cannot be fetched: GET https://")
    assert keys.call_count == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_respx_jwks_fault_with_known_keys(idp: Any, fault: str) -> None:
    factory, _meta, keys = idp
    clock = Clock(100.0)
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID, clock=clock)
    assert validator.validate(factory.mint()).oid == USER_OID
    inject(keys, fault)
    clock.now += 301
    # an unknown kid: one refresh, which fails; the token is 401, not 503
    with pytest.raises(InvalidTokenError):
        validator.validate(factory.mint(key=SigningKey()))
    assert keys.call_count == 2
    assert validator.validate(factory.mint()).oid == USER_OID
    # stale keys: a background refresh fails too, and the known-good keys keep serving
    clock.now += 24 * 3600
    assert validator.validate(factory.mint()).oid == USER_OID
    assert wait_for(lambda: keys.call_count == 3)
    assert wait_for(lambda: not validator.metadata._fetching)
    assert validator.validate(factory.mint()).oid == USER_OID


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_respx_jwks_fault_with_known_keys_async(idp: Any, fault: str) -> None:
    factory, _meta, keys = idp
    clock = Clock(100.0)
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID, clock=clock)
    assert (await validator.validate_async(factory.mint())).oid == USER_OID
    inject(keys, fault)
    clock.now += 24 * 3600
    assert (await validator.validate_async(factory.mint())).oid == USER_OID
    for _ in range(100):
        if keys.call_count == 2 and not validator.metadata._fetching:
            break
        await asyncio.sleep(0.02)
    assert keys.call_count == 2
    assert (await validator.validate_async(factory.mint())).oid == USER_OID


def test_respx_ca_bundle_path_is_used(idp: Any, tmp_path: Any) -> None:
    import certifi

    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    factory, _meta, _keys = idp
    validator = AccessTokenValidator(AUTHORITY, API_CLIENT_ID, verify=str(bundle))
    assert validator.validate(factory.mint()).oid == USER_OID
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        AccessTokenValidator(AUTHORITY, API_CLIENT_ID, verify=str(broken))


# -- TLS verification failures are named, with the fix (issue 16, point 5) ----------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_untrusted_tls_certificate_is_named_in_the_log_with_the_fix(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The emulator serves https with its own CA, as a corporate TLS-inspecting proxy would: a
    validator that does not trust that CA answers 503 (generic to the client), and the log says
    that TLS verification failed and which setting fixes it. With the CA bundle, keys load."""
    from entra_ciam.devidp.testing import running_devidp

    caplog.set_level(logging.WARNING, logger="entra_ciam")
    token = TokenFactory().mint()  # any well-formed token: the keys are what is at stake

    def validate(validator: AccessTokenValidator) -> Any:
        if mode == "sync":
            return validator.validate(token)
        return asyncio.run(validator.validate_async(token))

    with running_devidp() as idp:
        untrusting = AccessTokenValidator(idp.authority, API_CLIENT_ID)
        with pytest.raises(MetadataUnavailableError) as info:
            validate(untrusting)
        trusting = AccessTokenValidator(idp.authority, API_CLIENT_ID, verify=idp.ca_bundle)
        with pytest.raises(InvalidTokenError, match="not one of the issuer's keys"):
            validate(trusting)  # the keys were fetched; our token's kid is not among them
    detail = internal_detail(info.value, "failed TLS certificate verification")
    assert idp.metadata_url in detail
    (event,) = [r for r in caplog.records if vars(r).get("event") == "metadata_unavailable"]
    assert vars(event)["url"] == idp.metadata_url
    assert vars(event)["error"].startswith("failed TLS certificate verification (")
    assert "verify='/path/to/ca.pem'" in vars(event)["remedy"]
    assert "ENTRA_CA_BUNDLE" in vars(event)["remedy"]
    assert "TLS certificate verification" in event.getMessage()
