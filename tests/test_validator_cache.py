"""The validated-token cache: the fast path for repeated tokens must never accept what a full
validation would refuse, and must stay bounded and O(1) under a stream of new tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import pytest

from entra_ciam import AccessTokenValidator, InvalidTokenError
from tests.support.clock import Clock, at_wall_time
from tests.support.oidc_stub import OIDCStub
from tests.support.tokens import API_CLIENT_ID, USER_OID, SigningKey, TokenFactory


@dataclass
class Setup:
    factory: TokenFactory
    stub: OIDCStub
    clock: Clock

    def validator(self, cache_size: int = 4096) -> AccessTokenValidator:
        return AccessTokenValidator(
            self.stub.authority, API_CLIENT_ID, cache_size=cache_size, clock=self.clock
        )


@pytest.fixture
def setup(served: tuple[TokenFactory, OIDCStub]) -> Setup:
    factory, stub = served
    stub.jwks = factory.jwks()
    stub.fault = None
    return Setup(factory, stub, Clock())


def test_cached_token_past_exp_is_refused_and_dropped(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = setup.validator()
    exp = int(time.time()) + 300
    token = setup.factory.mint(exp=exp)
    first = validator.validate(token)
    assert validator.validate(token) is first  # answered from the cache
    at_wall_time(monkeypatch, exp + 59)  # within the 60 s leeway: still good (revalidated)
    assert validator.validate(token).oid == USER_OID
    at_wall_time(monkeypatch, exp + 60)
    with pytest.raises(InvalidTokenError, match="expired"):
        validator.validate(token)
    with pytest.raises(InvalidTokenError, match="expired"):
        asyncio.run(validator.validate_async(token))
    assert len(validator._cache) == 0


def test_cached_token_not_yet_valid_is_refused(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = setup.validator()
    now = int(time.time())
    token = setup.factory.mint(nbf=now + 30, iat=now)  # within leeway: accepted and cached
    assert validator.validate(token).oid == USER_OID
    at_wall_time(monkeypatch, now - 3600)  # the clock steps back an hour
    with pytest.raises(InvalidTokenError, match="not valid before"):
        validator.validate(token)


def test_cached_token_is_refused_once_its_key_is_removed(setup: Setup) -> None:
    validator = setup.validator()
    token = setup.factory.mint()
    first = validator.validate(token)
    assert validator.validate(token) is first
    hits = setup.stub.hits[f"/{setup.factory.tenant_id}/discovery/v2.0/keys"]
    setup.stub.jwks = {"keys": [SigningKey().jwk()]}  # the tenant drops the key
    setup.clock.now += 12 * 3600 + 1  # the scheduled refresh is due
    # A cache hit must not postpone that refresh: like the full path, this request is still
    # answered with the known key while the refresh runs in the background...
    validator.validate(token)
    deadline = time.monotonic() + 10
    while setup.stub.hits[f"/{setup.factory.tenant_id}/discovery/v2.0/keys"] == hits:
        assert time.monotonic() < deadline, "the cache hit did not start the key refresh"
        time.sleep(0.01)
    # ...and once it lands the token is refused, cached or not.
    while True:
        try:
            validator.validate(token)
        except InvalidTokenError as exc:
            assert "not one of the issuer's keys" in exc.description
            break
        assert time.monotonic() < deadline, "the removed key still validates"
        time.sleep(0.01)
    with pytest.raises(InvalidTokenError, match="not one of the issuer's keys"):
        asyncio.run(validator.validate_async(token))


def test_refused_tokens_never_enter_the_cache(setup: Setup) -> None:
    validator = setup.validator()
    good = setup.factory.mint()
    head, _, signature = good.split(".")
    forged = ".".join([head, setup.factory.mint(scp="Admin").split(".")[1], signature])
    wrong_audience = setup.factory.mint(aud="11111111-2222-4333-8444-555555555555")
    for token in (forged, wrong_audience, forged):
        with pytest.raises(InvalidTokenError):
            validator.validate(token)
    assert len(validator._cache) == 0
    # the good token, once cached, lends nothing to another payload carrying its signature
    validator.validate(good)
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        validator.validate(forged)
    assert len(validator._cache) == 1


def test_sync_and_async_share_the_cache(setup: Setup) -> None:
    validator = setup.validator()
    token = setup.factory.mint()
    first = asyncio.run(validator.validate_async(token))
    assert validator.validate(token) is first


def test_a_stream_of_new_tokens_keeps_the_cache_full_and_fifo(setup: Setup) -> None:
    validator = setup.validator(cache_size=5)
    tokens = [setup.factory.mint() for _ in range(12)]
    claims = [validator.validate(t) for t in tokens]
    assert len(validator._cache) == 5
    # the newest five are answered from the cache, the older ones are validated again
    for token, first in zip(tokens[-5:], claims[-5:], strict=True):
        assert validator.validate(token) is first
    assert validator.validate(tokens[0]) is not claims[0]
    assert len(validator._cache) == 5


def test_expired_entries_are_swept_before_live_ones_are_evicted(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = setup.validator(cache_size=4)
    now = time.time()
    short = [setup.factory.mint(exp=int(now) + 120) for _ in range(2)]
    long = [setup.factory.mint(exp=int(now) + 3600) for _ in range(2)]
    for token in short + long:
        validator.validate(token)
    at_wall_time(monkeypatch, now + 600)  # the short tokens are now expired
    fresh = [setup.factory.mint(iat=int(now), exp=int(now) + 7200) for _ in range(6)]
    for token in fresh:
        validator.validate(token)
    assert len(validator._cache) <= 4
    # whatever the cache holds is live; expired tokens are refused, not served
    for token in short:
        with pytest.raises(InvalidTokenError, match="expired"):
            validator.validate(token)


def test_cache_off_validates_every_time(setup: Setup) -> None:
    validator = setup.validator(cache_size=0)
    token = setup.factory.mint()
    assert validator.validate(token) is not validator.validate(token)
    assert len(validator._cache) == 0


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_the_sweep_runs_every_cache_size_insertions_and_spares_live_entries(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once full, every insertion evicts the oldest entry, and every ``cache_size``-th one
    first drops the entries that have expired (``exp`` reached counts as expired): those may be
    newer than live ones, which then stay."""
    now = float(int(time.time()))
    at_wall_time(monkeypatch, now)
    validator = setup.validator(cache_size=4)
    live = [setup.factory.mint(exp=int(now) + 3600) for _ in range(4)]
    short = [setup.factory.mint(exp=int(now) + 120) for _ in range(2)]
    for token in live + short:  # full after four; each short one evicts the oldest live one
        validator.validate(token)
    assert list(validator._cache) == [digest(t) for t in live[2:] + short]
    at_wall_time(monkeypatch, now + 120)  # the short ones expire this very second
    fresh = [setup.factory.mint(exp=int(now) + 3600) for _ in range(3)]
    validator.validate(fresh[0])  # the third insertion since full: still first in, first out
    assert list(validator._cache) == [digest(t) for t in [live[3], *short, fresh[0]]]
    validator.validate(fresh[1])  # the fourth: the sweep drops both short ones, live[3] stays
    assert list(validator._cache) == [digest(t) for t in [live[3], fresh[0], fresh[1]]]
    validator.validate(fresh[2])  # room again: nothing evicted
    assert list(validator._cache) == [digest(t) for t in [live[3], *fresh]]
    # The count starts again: the next sweep comes four insertions into a full cache later.
    again = [setup.factory.mint(exp=int(now) + 240) for _ in range(2)]
    later = [setup.factory.mint(exp=int(now) + 3600) for _ in range(2)]
    for token in again:
        validator.validate(token)
    at_wall_time(monkeypatch, now + 240)
    validator.validate(later[0])  # the third since the sweep: first in, first out
    assert list(validator._cache) == [digest(t) for t in [fresh[2], *again, later[0]]]
    validator.validate(later[1])  # the fourth: the second sweep
    assert list(validator._cache) == [digest(t) for t in [fresh[2], *later]]


def test_each_insertion_into_a_full_cache_counts_once_towards_the_sweep(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = float(int(time.time()))
    at_wall_time(monkeypatch, now)
    validator = setup.validator(cache_size=4)
    tokens = [setup.factory.mint(exp=int(now) + 3600) for _ in range(4)]
    soon = setup.factory.mint(exp=int(now) + 60)
    later = setup.factory.mint(exp=int(now) + 3600)
    for token in [*tokens, soon]:
        validator.validate(token)
    at_wall_time(monkeypatch, now + 60)  # soon has expired, but only two insertions were made
    validator.validate(later)
    assert list(validator._cache) == [digest(t) for t in [tokens[2], tokens[3], soon, later]]


def test_a_negative_cache_size_turns_the_cache_off(setup: Setup) -> None:
    validator = setup.validator(cache_size=-5)
    token = setup.factory.mint()
    assert validator.validate(token) is not validator.validate(token)
    assert len(validator._cache) == 0


def test_the_longest_token_is_cached_too(setup: Setup) -> None:
    """Tokens up to the 16 KiB limit are remembered: the limit is the parser's, not less."""
    longest = ""
    for typ in ("JWT", "at+jwt"):  # header lengths differ, so one of them can reach 16384
        header = setup.factory.header(typ=typ)
        base = len(setup.factory.mint(header=header, filler=""))
        size = (16384 - base) * 3 // 4  # base64url: 4 characters per 3 bytes
        for filler in range(size - 4, size + 4):
            candidate = setup.factory.mint(header=header, filler="f" * filler)
            if len(candidate) == 16384:
                longest = candidate
    assert len(longest) == 16384
    validator = setup.validator()
    assert validator.validate(longest) is validator.validate(longest)


def test_a_str_subclass_cannot_borrow_another_tokens_cache_entry(setup: Setup) -> None:
    """The cache key is the hash of the exact characters: a str subclass whose encode() lies
    (here: returns a cached token's bytes) is validated for what it is, not looked up."""
    validator = setup.validator()
    victim = setup.factory.mint(scp="Todolist.ReadWrite")
    admitted = validator.validate(victim)

    class Lying(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
            return victim.encode()

    with pytest.raises(InvalidTokenError):
        validator.validate(Lying("not.a-token.at-all"))
    own = setup.factory.mint(scp="Todolist.Read")
    claims = validator.validate(Lying(own))
    assert claims.scopes == {"Todolist.Read"} and claims is not admitted
