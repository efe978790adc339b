"""Discovery and key cache rules (entra_ciam.metadata), driven by a fake clock.

The sans-IO MetadataCache is fed bodies directly; the two drivers are exercised through respx so
that failures (redirects, oversized or slow answers) are injected at the httpx layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import httpx
import pytest
import respx

from entra_ciam.errors import InvalidTokenError, MetadataUnavailableError
from entra_ciam.http import (
    BodyLimit,
    FetchError,
    afetch,
    create_async_client,
    create_client,
    fetch,
)
from entra_ciam.metadata import (
    AsyncMetadataClient,
    MetadataCache,
    MetadataClient,
    parse_metadata,
)
from tests.support.clock import Clock
from tests.support.oidc_stub import running_stub
from tests.support.rejections import internal_detail
from tests.support.tokens import TENANT_ID, SigningKey, TokenFactory

AUTHORITY = f"https://contoso.ciamlogin.com/{TENANT_ID}"
METADATA_URL = f"{AUTHORITY}/v2.0/.well-known/openid-configuration"
JWKS_URI = f"{AUTHORITY}/discovery/v2.0/keys"
FACTORY = TokenFactory()
SECOND = SigningKey()


def discovery(**overrides: Any) -> bytes:
    doc = FACTORY.discovery(AUTHORITY, JWKS_URI)
    doc.update(overrides)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def jwks(*keys: SigningKey) -> bytes:
    return json.dumps({"keys": [k.jwk() for k in keys or (FACTORY.key,)]}).encode()


def new_cache(clock: Clock, **options: Any) -> MetadataCache:
    return MetadataCache(METADATA_URL, clock=clock, **options)


def fill(cache: MetadataCache, kid: str, *bodies: bytes) -> None:
    """Play the driver: plan a refresh for ``kid`` and feed it ``bodies`` in order."""
    refresh = cache.plan(kid)
    assert refresh is not None
    for body in bodies:
        assert refresh.next_url() is not None
        refresh.absorb(body)
    refresh.finish()


# -- the discovery document ---------------------------------------------------------------------


def test_parse_metadata_takes_issuer_and_jwks_uri() -> None:
    meta = parse_metadata(discovery())
    assert meta.issuer == FACTORY.issuer
    assert meta.jwks_uri == JWKS_URI
    assert meta.tenant_id == TENANT_ID
    assert meta.document["token_endpoint"].endswith("/oauth2/v2.0/token")


def test_parse_metadata_accepts_http_on_loopback_only() -> None:
    loop = parse_metadata(
        discovery(issuer="http://127.0.0.1:9/t/v2.0", jwks_uri="http://localhost:9/keys")
    )
    assert loop.jwks_uri == "http://localhost:9/keys"
    assert loop.tenant_id is None
    with pytest.raises(ValueError, match="jwks_uri must use https"):
        parse_metadata(discovery(jwks_uri="http://contoso.example/keys"))
    with pytest.raises(ValueError, match="issuer must use https"):
        parse_metadata(discovery(issuer="http://contoso.example/t/v2.0"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "not JSON"),
        (b"[]", "not a JSON object"),
        (discovery(issuer=None), 'no "issuer"'),
        (discovery(jwks_uri=None), 'no "jwks_uri"'),
        (discovery(jwks_uri=5), 'no "jwks_uri"'),
        (discovery(issuer="https://login.microsoftonline.com/{tenantid}/v2.0"), "multi-tenant"),
        (discovery(jwks_uri="file:///etc/passwd"), "jwks_uri has no host"),
        (discovery(jwks_uri="ftp://contoso.example/keys"), "jwks_uri must use https"),
        (b" " * 70_000, "larger than"),
    ],
)
def test_parse_metadata_rejects(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_metadata(body)


def test_metadata_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        MetadataCache("http://contoso.example/.well-known/openid-configuration")
    MetadataCache("http://[::1]:8080/t/v2.0/.well-known/openid-configuration")


# -- the state machine --------------------------------------------------------------------------


def test_cold_cache_fetches_metadata_then_keys() -> None:
    clock = Clock()
    cache = new_cache(clock)
    kid = FACTORY.key.kid
    assert cache.lookup(kid) == (None, None)
    refresh = cache.plan(kid)
    assert refresh is not None
    assert refresh.next_url() == METADATA_URL
    refresh.absorb(discovery())
    assert refresh.next_url() == JWKS_URI
    # while the refresh is in flight, other lookups wait rather than fail
    assert cache.lookup("someone-else") == (None, None)
    refresh.absorb(jwks())
    assert refresh.next_url() is None
    refresh.finish()
    assert cache.resolve(kid).public_numbers() == FACTORY.key.private.public_key().public_numbers()
    assert cache.plan(kid) is None  # a waiter that now holds the lock: nothing left to fetch
    key, background = cache.lookup(kid)
    assert key is not None
    assert background is None


def test_cold_failure_is_503_with_retry_after_and_backs_off() -> None:
    clock = Clock()
    cache = new_cache(clock, retry_interval=10)
    refresh = cache.plan("k")
    assert refresh is not None
    refresh.fail("GET https://... answered HTTP 500")
    refresh.finish()
    with pytest.raises(MetadataUnavailableError) as info:
        cache.resolve("k")
    assert info.value.status_code == 503
    assert info.value.retry_after == 10
    assert ("Retry-After", "10") in info.value.headers
    assert internal_detail(info.value, "HTTP 500")
    # during the back-off, requests fail fast: no refresh is planned
    clock.now += 4
    with pytest.raises(MetadataUnavailableError) as info:
        cache.lookup("k")
    assert info.value.retry_after == 6
    assert cache.plan("k") is None
    clock.now += 6
    assert cache.lookup("k") == (None, None)
    retry = cache.plan("k")
    assert retry is not None
    assert retry.next_url() == METADATA_URL


def test_keys_failure_after_metadata_retries_only_keys() -> None:
    clock = Clock()
    cache = new_cache(clock, retry_interval=5)
    refresh = cache.plan("k")
    assert refresh is not None
    refresh.absorb(discovery())
    refresh.absorb(b"<html>not json</html>")
    assert refresh.next_url() is None
    refresh.finish()
    with pytest.raises(MetadataUnavailableError) as info:
        cache.resolve("k")
    detail = internal_detail(info.value, "signing keys cannot be fetched: GET .*/keys ")
    assert "fix: the discovery document's jwks_uri must serve" in detail
    clock.now += 5
    retry = cache.plan("k")
    assert retry is not None
    assert retry.next_url() == JWKS_URI


@pytest.mark.parametrize(
    "bad", [b"<html>", b'{"keys": []}', b'{"keys": [{"kty": "EC", "kid": "x"}]}', b"[" * 9999]
)
def test_bad_refresh_keeps_known_good_keys(bad: bytes) -> None:
    clock = Clock()
    cache = new_cache(clock)
    kid = FACTORY.key.kid
    fill(cache, kid, discovery(), jwks())
    generation = cache.generation
    clock.now += 301
    fill(cache, "unknown", bad)
    assert cache.resolve(kid) is not None
    assert cache.generation == generation
    with pytest.raises(InvalidTokenError, match="not one of the issuer's keys"):
        cache.resolve("unknown")


def test_unknown_kid_refreshes_at_most_once_per_interval() -> None:
    clock = Clock()
    cache = new_cache(clock, unknown_kid_interval=300)
    fill(cache, FACTORY.key.kid, discovery(), jwks())
    # right after the cold fetch, an unknown kid is refused without any fetch
    with pytest.raises(InvalidTokenError, match="not one of the issuer's keys") as refused:
        cache.lookup("nope")
    assert "nope" not in refused.value.description  # the caller's kid is never echoed or logged
    assert cache.plan("nope") is None
    clock.now += 299
    with pytest.raises(InvalidTokenError):
        cache.lookup("nope")
    clock.now += 1
    assert cache.lookup("nope") == (None, None)
    refresh = cache.plan("nope")
    assert refresh is not None
    assert refresh.next_url() == JWKS_URI  # keys only: metadata is still fresh
    # the slot is claimed: concurrent unknown kids (other lock holders) get no second fetch
    assert cache.plan("other") is None
    refresh.absorb(jwks(FACTORY.key, SECOND))
    refresh.finish()
    assert cache.plan(SECOND.kid) is None
    assert cache.resolve(SECOND.kid) is not None
    for kid in (f"random-{i}" for i in range(1000)):
        with pytest.raises(InvalidTokenError):
            cache.lookup(kid)
        assert cache.plan(kid) is None


def test_stale_keys_serve_while_one_background_refresh_runs() -> None:
    clock = Clock()
    cache = new_cache(clock, refresh_interval=3600, retry_interval=30)
    kid = FACTORY.key.kid
    fill(cache, kid, discovery(), jwks())
    clock.now += 3599
    assert cache.lookup(kid)[1] is None
    clock.now += 1
    key, background = cache.lookup(kid)
    assert key is not None
    assert background is not None
    assert background.background
    assert cache.lookup(kid) == (key, None)  # only one background refresh at a time
    assert background.next_url() == METADATA_URL
    background.fail("GET ... failed: ConnectError")
    background.finish()
    # refresh failed: the old key keeps serving, and the next attempt waits retry_interval
    assert cache.lookup(kid) == (key, None)
    clock.now += 30
    key2, again = cache.lookup(kid)
    assert key2 is key
    assert again is not None
    again.absorb(discovery())
    again.absorb(jwks(SECOND))
    again.finish()
    # rotation: the old key is gone, the new one serves, the cache is fresh again
    with pytest.raises(InvalidTokenError):
        cache.lookup(kid)
    assert cache.lookup(SECOND.kid)[0] is not None
    assert cache.lookup(SECOND.kid)[1] is None


def test_generation_changes_only_when_keys_or_issuer_change() -> None:
    clock = Clock()
    cache = new_cache(clock)
    fill(cache, FACTORY.key.kid, discovery(), jwks())
    first = cache.generation
    clock.now += 301
    fill(cache, "x", jwks())
    assert cache.generation == first
    clock.now += 301
    fill(cache, "y", jwks(FACTORY.key, SECOND))
    assert cache.generation == first + 1
    clock.now += 24 * 3600  # stale: the background refresh also re-reads discovery
    _key, background = cache.lookup(FACTORY.key.kid)
    assert background is not None
    background.absorb(discovery(issuer="https://other.example/t/v2.0"))
    background.absorb(jwks(FACTORY.key, SECOND))
    background.finish()
    assert cache.metadata is not None
    assert cache.metadata.issuer == "https://other.example/t/v2.0"
    assert cache.generation == first + 2


def test_failures_are_logged_as_events_once_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 16, point 5: what a 503 no longer says goes to the log, as an event with fields;
    a failed refresh while known-good keys serve is a warning of another name."""
    caplog.set_level(logging.DEBUG, logger="entra_ciam.metadata")
    clock = Clock()
    cache = new_cache(clock, retry_interval=10)
    refresh = cache.plan("k")
    assert refresh is not None
    refresh.fail("answered HTTP 500", remedy="it is retried")
    refresh.finish()
    for _ in range(5):  # requests during the back-off add no record
        with pytest.raises(MetadataUnavailableError):
            cache.lookup("k")
    events = [vars(r) for r in caplog.records if "event" in vars(r)]
    assert [(e["event"], e["levelname"]) for e in events] == [("metadata_unavailable", "ERROR")]
    assert {k: events[0][k] for k in ("step", "url", "error", "remedy")} == {
        "step": "metadata",
        "url": METADATA_URL,
        "error": "answered HTTP 500",
        "remedy": "it is retried",
    }
    caplog.clear()
    clock.now += 10
    fill(cache, FACTORY.key.kid, discovery(), jwks())
    clock.now += 301  # an unknown kid may refresh the keys; that refresh fails
    refresh = cache.plan("other")
    assert refresh is not None
    refresh.absorb(b"<html>")
    refresh.finish()
    events = [vars(r) for r in caplog.records if "event" in vars(r)]
    assert [(e["event"], e["levelname"]) for e in events] == [
        ("metadata_refresh_failed", "WARNING")
    ]
    assert events[0]["url"] == JWKS_URI and events[0]["step"] == "keys"
    assert "jwks_uri must serve the tenant's signing keys" in events[0]["remedy"]
    assert "keeping the last known-good keys" in caplog.records[-1].getMessage()


def test_interrupted_refresh_releases_waiters() -> None:
    clock = Clock()
    cache = new_cache(clock)
    refresh = cache.plan("k")
    assert refresh is not None
    refresh.finish()  # e.g. the task was cancelled before any answer
    with pytest.raises(MetadataUnavailableError) as info:
        cache.lookup("k")
    internal_detail(info.value, "interrupted")


# -- the drivers --------------------------------------------------------------------------------


@pytest.fixture
def idp() -> Any:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        meta = router.get(METADATA_URL).mock(return_value=httpx.Response(200, content=discovery()))
        keys = router.get(JWKS_URI).mock(return_value=httpx.Response(200, content=jwks()))
        yield meta, keys


def test_sync_driver_fetches_once_for_many_threads(idp: Any) -> None:
    meta, keys = idp
    client = MetadataClient(MetadataCache(METADATA_URL))
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.key_for(FACTORY.key.kid)))
        for _ in range(50)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 50
    assert meta.call_count == 1
    assert keys.call_count == 1


async def test_async_driver_fetches_once_for_many_tasks(idp: Any) -> None:
    meta, keys = idp
    client = AsyncMetadataClient(MetadataCache(METADATA_URL))
    results = await asyncio.gather(*(client.key_for(FACTORY.key.kid) for _ in range(50)))
    assert len({id(k) for k in results}) == 1
    assert meta.call_count == 1
    assert keys.call_count == 1


def test_redirects_are_not_followed(idp: Any) -> None:
    _meta, keys = idp
    keys.mock(
        return_value=httpx.Response(302, headers={"Location": "https://attacker.example/keys"})
    )
    client = MetadataClient(MetadataCache(METADATA_URL))
    with pytest.raises(MetadataUnavailableError) as info:
        client.key_for(FACTORY.key.kid)
    internal_detail(info.value, "HTTP 302; fix: redirects are not followed")


def test_oversized_answers_are_refused(idp: Any) -> None:
    meta, _keys = idp
    meta.mock(return_value=httpx.Response(200, content=b" " * (65 * 1024)))
    client = MetadataClient(MetadataCache(METADATA_URL))
    with pytest.raises(MetadataUnavailableError) as info:
        client.key_for(FACTORY.key.kid)
    internal_detail(info.value, r"byte limit|more than")


async def test_slow_answers_are_refused(idp: Any) -> None:
    meta, _keys = idp
    meta.mock(side_effect=httpx.ReadTimeout("slow"))
    client = AsyncMetadataClient(MetadataCache(METADATA_URL))
    with pytest.raises(MetadataUnavailableError) as info:
        await client.key_for(FACTORY.key.kid)
    internal_detail(info.value, "ReadTimeout")
    assert info.value.retry_after >= 1


def test_background_refresh_in_a_thread(idp: Any) -> None:
    meta, keys = idp
    clock = Clock()
    client = MetadataClient(MetadataCache(METADATA_URL, clock=clock, refresh_interval=60))
    first = client.key_for(FACTORY.key.kid)
    keys.mock(return_value=httpx.Response(200, content=jwks(FACTORY.key, SECOND)))
    clock.now += 61
    assert client.key_for(FACTORY.key.kid) is first  # served at once, from the cache
    deadline = threading.Event()
    for _ in range(100):
        if keys.call_count == 2 and SECOND.kid in client.cache.keys:
            break
        deadline.wait(0.05)
    assert keys.call_count == 2
    assert meta.call_count == 2
    assert client.key_for(SECOND.kid) is not None


async def test_background_refresh_in_a_task(idp: Any) -> None:
    _meta, keys = idp
    clock = Clock()
    client = AsyncMetadataClient(MetadataCache(METADATA_URL, clock=clock, refresh_interval=60))
    first = await client.key_for(FACTORY.key.kid)
    keys.mock(return_value=httpx.Response(503))
    clock.now += 61
    assert await client.key_for(FACTORY.key.kid) is first
    for _ in range(100):
        if keys.call_count == 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    assert keys.call_count == 2
    # the failed refresh kept the known-good key
    assert await client.key_for(FACTORY.key.kid) is first


# -- the bounded fetch both drivers use -----------------------------------------------------------


def test_body_limit_checks_status_length_size_and_deadline() -> None:
    guard = BodyLimit("https://idp.example/keys", max_bytes=10, total_timeout=60)
    with pytest.raises(FetchError, match="HTTP 404"):
        guard.start(httpx.Response(404))
    with pytest.raises(FetchError, match="declared 11 bytes"):
        guard.start(httpx.Response(200, headers={"Content-Length": "11"}))
    with pytest.raises(FetchError, match="bad Content-Length"):
        guard.start(httpx.Response(200, headers={"Content-Length": "ten"}))
    guard.start(httpx.Response(200, headers={"Content-Length": "10"}))
    guard.feed(b"12345")
    with pytest.raises(FetchError, match="more than 10 bytes"):
        guard.feed(b"678901")
    late = BodyLimit("https://idp.example/keys", max_bytes=10, total_timeout=-1)
    with pytest.raises(FetchError, match="took too long"):
        late.feed(b"1")


async def test_async_fetch_has_a_total_deadline() -> None:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        stub.fault = "slow"
        stub.slow_seconds = 0.4
        async with create_async_client() as client:
            with pytest.raises(FetchError, match=r"took longer than 0\.1 s"):
                await afetch(client, stub.jwks_uri, total_timeout=0.1)
            stub.fault = None
            assert json.loads(await afetch(client, stub.jwks_uri))["keys"]
        with create_client() as sync_client:
            assert json.loads(fetch(sync_client, stub.jwks_uri))["keys"]
            with pytest.raises(FetchError, match=r"more than 100 bytes|declared"):
                fetch(sync_client, stub.jwks_uri, max_bytes=100)
        await asyncio.sleep(0.4)  # let the slow handler finish while this test still runs


def test_fetch_sends_identity_encoding_and_no_redirects(idp: Any) -> None:
    meta, _keys = idp
    with create_client() as client:
        fetch(client, METADATA_URL)
    request = meta.calls.last.request
    assert request.headers["Accept-Encoding"] == "identity"
    assert client.follow_redirects is False
