"""``GatedHttpClient``: Entra's 429/503 + Retry-After closes the token endpoint for this process."""

from __future__ import annotations

import email.utils
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from entra_ciam.http import FetchError, MsalHttpClient
from entra_ciam.sessions import MemoryStore, SessionStoreUnavailableError, SQLiteStore
from entra_ciam.signin.throttle import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    GatedHttpClient,
    NetworkNeeded,
    RetryAfterGate,
    TokenEndpointThrottled,
    retry_after_seconds,
)

TOKEN = "https://login.example.com/tenant/oauth2/v2.0/token"
OTHER = "https://login.example.com/other-tenant/oauth2/v2.0/token"
DISCOVERY = "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("999999", MAX_RETRY_AFTER),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, time.time()) == expected


def test_retry_after_as_an_http_date() -> None:
    now = time.time()
    value = email.utils.formatdate(now + 42, usegmt=True)
    seconds = retry_after_seconds(value, now)
    assert seconds is not None and 40 <= seconds <= 43
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert retry_after_seconds(past, now) == 0.0


@respx.mock
def test_a_429_closes_the_token_endpoint_until_retry_after_has_passed() -> None:
    clock = Clock()
    client = GatedHttpClient(MsalHttpClient(), RetryAfterGate(clock))
    token = respx.post(TOKEN).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "30"}, json={"error": "x"})
    )
    other = respx.post(OTHER).mock(return_value=httpx.Response(200, json={"ok": True}))
    discovery = respx.get(DISCOVERY).mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(TokenEndpointThrottled) as first:
        client.post(TOKEN, data={"grant_type": "refresh_token"})
    assert first.value.status == 429 and first.value.retry_after == 30
    assert isinstance(first.value, FetchError), "callers that catch FetchError answer 503"
    assert "POST" in str(first.value) and "refresh_token" not in str(first.value)
    clock.now += 20
    with pytest.raises(TokenEndpointThrottled) as second:
        client.post(TOKEN, data={"grant_type": "refresh_token"})
    assert second.value.status is None and second.value.retry_after == pytest.approx(10)
    assert token.call_count == 1, "nothing is sent while Entra asked us to wait"
    assert client.get(DISCOVERY).status_code == 200 and discovery.call_count == 1
    assert client.post(OTHER).status_code == 200 and other.call_count == 1
    clock.now += 11
    token.mock(return_value=httpx.Response(200, json={"access_token": "t"}))
    assert client.post(TOKEN).status_code == 200 and token.call_count == 2
    client.close()


@respx.mock
def test_503_needs_retry_after_but_429_always_closes() -> None:
    clock = Clock()
    client = GatedHttpClient(MsalHttpClient(), RetryAfterGate(clock))
    route = respx.post(TOKEN).mock(return_value=httpx.Response(503, text="busy"))
    assert client.post(TOKEN).status_code == 503  # MSAL's own 5xx handling: no Retry-After
    assert client.post(TOKEN).status_code == 503 and route.call_count == 2
    route.mock(return_value=httpx.Response(503, headers={"Retry-After": "2"}))
    with pytest.raises(TokenEndpointThrottled) as throttled:
        client.post(TOKEN)
    assert throttled.value.status == 503 and throttled.value.retry_after == 2
    clock.now += 3
    route.mock(return_value=httpx.Response(429, headers={"Retry-After": "later"}))
    with pytest.raises(TokenEndpointThrottled) as defaulted:
        client.post(TOKEN)
    assert defaulted.value.retry_after == DEFAULT_RETRY_AFTER
    client.close()


@respx.mock
def test_the_wait_is_shared_with_every_process_using_the_session_store(tmp_path: Path) -> None:
    """Two gates over one SQLite file stand for two app processes: one 429 closes both."""
    path = tmp_path / "sessions.db"
    first = GatedHttpClient(MsalHttpClient(), RetryAfterGate(store=SQLiteStore(path)))
    second = GatedHttpClient(MsalHttpClient(), RetryAfterGate(store=SQLiteStore(path)))
    token = respx.post(TOKEN).mock(return_value=httpx.Response(429, headers={"Retry-After": "60"}))
    with pytest.raises(TokenEndpointThrottled):
        first.post(TOKEN)
    with pytest.raises(TokenEndpointThrottled) as caught:
        second.post(TOKEN)
    assert caught.value.status is None and 50 < caught.value.retry_after <= 60
    assert token.call_count == 1
    other = respx.post(OTHER).mock(return_value=httpx.Response(200, json={}))
    assert second.post(OTHER).status_code == 200 and other.call_count == 1
    first.close()
    second.close()


def test_a_broken_store_never_breaks_the_gate() -> None:
    class Down(MemoryStore):
        def get(self, sid: str) -> Any:
            raise SessionStoreUnavailableError("down")

        def set(self, sid: str, data: Any, ttl: float) -> None:
            raise SessionStoreUnavailableError("down")

    gate = RetryAfterGate(store=Down())
    assert gate.remaining(TOKEN) == 0.0
    gate.close(TOKEN, 5)  # still closed in this process
    assert gate.remaining(TOKEN) > 0


@respx.mock
def test_offline_closes_the_network_for_the_calling_thread_only() -> None:
    client = GatedHttpClient(MsalHttpClient())
    token = respx.post(TOKEN).mock(return_value=httpx.Response(200, json={}))
    discovery = respx.get(DISCOVERY).mock(return_value=httpx.Response(200, json={}))
    other_thread: list[int] = []
    with client.offline():
        with pytest.raises(NetworkNeeded):
            client.post(TOKEN)
        assert client.get(DISCOVERY).status_code == 200  # MSAL's discovery is not a token call
        worker = threading.Thread(
            target=lambda: other_thread.append(client.post(TOKEN).status_code)
        )
        worker.start()
        worker.join(10)
    assert other_thread == [200]
    assert token.call_count == 1 and discovery.call_count == 1
    assert client.post(TOKEN).status_code == 200
    client.close()
