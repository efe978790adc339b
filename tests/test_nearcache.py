"""The Redis store's near cache: sessions kept in the process, never served after Redis changed them.

Every test runs its own redis-server (``RedisChild``), so the commands Redis counts are this
test's alone. "Another process" is a plain redis-py client of the test's: what it writes must be
what the store reads next. After such a write the test waits for one more reply from Redis on that
client (``_settled``): Redis has then finished the pass that sent its invalidation message, as it
has long before a browser's next request reaches another app process.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.tls import ensure_tls
from entra_ciam.sessions import RedisStore, SessionStoreUnavailableError, from_url
from entra_ciam.sessions.base import encode_record
from entra_ciam.sessions.nearcache import NearCache
from tests.support.external import RedisChild

pytest.importorskip("redis")
import redis


@pytest.fixture
def child() -> Iterator[RedisChild]:
    with RedisChild() as server:
        yield server


@pytest.fixture
def other(child: RedisChild) -> Iterator[redis.Redis]:
    """Another app process's client, writing behind the store's back."""
    client = redis.Redis(host="127.0.0.1", port=child.port, protocol=2)
    yield client
    client.close()


@pytest.fixture
def store(child: RedisChild) -> Iterator[RedisStore]:
    made = RedisStore(child.url, prefix="t:")
    yield made
    made.close()


def _gets(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def _settled(client: redis.Redis) -> None:
    assert client.ping()


def _warm(store: RedisStore, sid: str, record: dict[str, Any]) -> None:
    """Write ``record`` and read it until the store holds a copy (after a lost listener, the
    store waits a little before it subscribes again)."""
    store.set(sid, record, 60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert store.get(sid) == record
        if store._near is not None and store._near.size:
            return
        time.sleep(0.01)
    pytest.fail("the near cache never kept a record")


def test_an_unchanged_session_is_read_from_redis_once(
    store: RedisStore, other: redis.Redis
) -> None:
    record = {"c": 1.0, "a": 2.0, "d": {"user": {"name": "Ada"}, "blob": "x" * 10_000}}
    store.set("sid", record, 60)
    before = _gets(other)
    for _ in range(50):
        assert store.get("sid") == record
    assert _gets(other) - before == 1


def test_copies_never_share_data_with_the_cache(store: RedisStore) -> None:
    _warm(store, "sid", {"d": {"roles": ["reader"]}})
    first = store.get("sid")
    assert first is not None
    first["d"]["roles"].append("admin")
    first["d"]["extra"] = True
    assert store.get("sid") == {"d": {"roles": ["reader"]}}


def test_the_read_that_fills_the_cache_shares_nothing_with_it(store: RedisStore) -> None:
    store.set("sid", {"d": {"roles": ["reader"]}}, 60)
    near = store._near
    assert near is not None
    deadline = time.monotonic() + 10
    while not near.size and time.monotonic() < deadline:
        filling = store.get("sid")  # the last of these is the read whose reply was kept
    assert near.size == 1 and filling is not None
    filling["d"]["roles"].append("admin")
    assert store.get("sid") == {"d": {"roles": ["reader"]}}


def test_a_write_by_another_process_is_what_the_next_read_sees(
    store: RedisStore, other: redis.Redis
) -> None:
    _warm(store, "sid", {"user": "ada"})
    other.set("t:sid", encode_record({"user": "grace"}), px=60_000)
    _settled(other)
    assert store.get("sid") == {"user": "grace"}

    other.delete("t:sid")  # a sign-out elsewhere
    _settled(other)
    assert store.get("sid") is None


def test_a_session_that_expired_in_redis_is_gone_here_too(
    store: RedisStore, other: redis.Redis
) -> None:
    _warm(store, "sid", {"user": "ada"})
    other.pexpire("t:sid", 1)
    while other.exists("t:sid"):  # touching it makes Redis expire it (and say so)
        pass
    _settled(other)
    assert store.get("sid") is None


def test_this_processs_own_writes_are_seen_at_once(store: RedisStore) -> None:
    _warm(store, "sid", {"n": 1})
    store.set("sid", {"n": 2}, 60)
    assert store.get("sid") == {"n": 2}
    store.update("sid", lambda current: {"n": 3}, 60)
    assert store.get("sid") == {"n": 3}
    assert store.pop("sid") == {"n": 3}
    assert store.get("sid") is None
    _warm(store, "sid", {"n": 4})
    store.delete("sid")
    assert store.get("sid") is None


def test_flushall_empties_the_cache(store: RedisStore, other: redis.Redis) -> None:
    for n in range(3):
        _warm(store, f"s{n}", {"n": n})
    other.flushall()
    _settled(other)
    assert [store.get(f"s{n}") for n in range(3)] == [None, None, None]


def test_a_lost_listener_serves_nothing_it_may_have_missed(
    store: RedisStore, other: redis.Redis
) -> None:
    _warm(store, "sid", {"user": "ada"})
    assert other.client_kill_filter(_type="pubsub") == 1  # the invalidation listener
    other.set("t:sid", encode_record({"user": "grace"}), px=60_000)
    _settled(other)
    assert store.get("sid") == {"user": "grace"}
    _warm(store, "sid", {"user": "alan"})  # and it subscribes again


def test_over_tls_the_listener_hears_every_write(tmp_path: Path) -> None:
    """``rediss://``, as a managed Redis is reached: the listener subscribes over TLS, and a
    burst of invalidations (one command ending thirty sessions) reaches every lookup."""
    files = ensure_tls(StateDir(tmp_path / "tls"))
    with RedisChild(tls=files) as child:
        store = from_url(f"{child.url}&prefix=t:")
        assert isinstance(store, RedisStore)
        other = redis.Redis(
            host="127.0.0.1",
            port=child.port,
            ssl=True,
            ssl_ca_certs=str(files.ca_cert),
            protocol=2,
        )
        try:
            names = [f"s{n}" for n in range(30)]
            for name in names:
                _warm(store, name, {"user": name})
            before = _gets(other)
            assert [store.get(name) for name in names] == [{"user": n} for n in names]
            assert _gets(other) == before  # all kept here
            other.delete(*(f"t:{name}" for name in names))
            _settled(other)
            assert [store.get(name) for name in names] == [None] * len(names)
            _warm(store, "s0", {"user": "grace"})
            other.set("t:s0", encode_record({"user": "alan"}), px=60_000)
            _settled(other)
            assert store.get("s0") == {"user": "alan"}
        finally:
            other.close()
            store.close()


def _warm_with_quick_pings(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> NearCache:
    """The store's near cache holding ``sid``, its liveness timings shortened for a test:
    a PING after 0.05 s of silence, no copy trusted after 0.3 s."""
    from entra_ciam.sessions import nearcache

    monkeypatch.setattr(nearcache, "PING_AFTER", 0.05)
    monkeypatch.setattr(nearcache, "SILENT_AFTER", 0.3)
    _warm(store, "sid", {"user": "ada"})
    near = store._near
    assert near is not None
    return near


def test_a_listener_that_stops_answering_is_replaced(
    store: RedisStore, other: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that vanishes without closing the connection sends nothing, invalidations
    included: past SILENT_AFTER with a PING unanswered, no copy is served and the listener is
    dropped and subscribed again. Redis paused (CLIENT PAUSE) stands in for the silent peer."""
    near = _warm_with_quick_pings(store, monkeypatch)
    first_listener = near._client_id
    other.client_pause(3000, all=True)
    time.sleep(0.4)
    assert near.lookup("t:sid") is None  # silent past SILENT_AFTER: nothing served; a PING goes out
    assert near._client_id == first_listener
    time.sleep(0.4)
    assert near.lookup("t:sid") is None  # the PING unanswered: the listener is dropped
    assert near._client_id is None
    _warm(store, "sid", {"user": "grace"})  # after the pause: subscribed again, serving again
    assert near._client_id not in (None, first_listener)


def test_a_listener_idle_for_long_is_kept_while_its_ping_is_on_the_way(
    store: RedisStore, other: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an idle spell longer than SILENT_AFTER, the first lookup sends a PING; a lookup
    before its answer arrives (another thread's, on a busy server) must not take the silence
    since the last message for an unanswered PING and drop the listener. Redis is paused so the
    answer is sure to be late."""
    near = _warm_with_quick_pings(store, monkeypatch)
    listener = near._client_id
    time.sleep(0.4)  # idle: nothing heard for longer than SILENT_AFTER
    other.client_pause(200, all=True)
    assert near.lookup("t:sid") is None  # long silent: nothing served, a PING goes out
    assert near.lookup("t:sid") is None  # its answer is not in yet: still nothing served
    assert near._client_id == listener  # but the listener is kept
    deadline = time.monotonic() + 5
    while near.lookup("t:sid") is None:  # the PONG arrives after the pause: serving again
        assert time.monotonic() < deadline, "the listener never answered its PING"
        time.sleep(0.01)
    assert near._client_id == listener
    assert near.lookup("t:sid") == {"user": "ada"}


def test_a_health_check_interval_in_the_url_leaves_the_listener_alone(
    child: RedisChild,
) -> None:
    """redis-py's health check expects a plain PONG, which a subscribed connection never sends:
    the listener must not run it, or it would be dropped at every interval."""
    store = RedisStore(f"{child.url}?health_check_interval=1", prefix="t:")
    other = redis.Redis(host="127.0.0.1", port=child.port)
    try:
        _warm(store, "sid", {"user": "ada"})
        time.sleep(1.3)  # idle past the interval: the next lookup sends the listener a PING
        assert store.get("sid") == {"user": "ada"}
        time.sleep(0.05)
        assert store.get("sid") == {"user": "ada"}  # and reads its answer
        near = store._near
        assert near is not None
        subscribed = [int(c["id"]) for c in other.client_list(_type="pubsub")]
        assert subscribed == [near._client_id]  # the listener is the one still subscribed
        other.set("t:sid", encode_record({"user": "grace"}), px=60_000)
        _settled(other)
        assert store.get("sid") == {"user": "grace"}  # and still told of changes
    finally:
        other.close()
        store.close()


def test_a_restarted_redis_leaves_no_copy_behind(child: RedisChild, store: RedisStore) -> None:
    _warm(store, "sid", {"user": "ada"})
    child.stop()
    with pytest.raises(SessionStoreUnavailableError):
        store.get("sid")
    child.start()  # empty: nothing persists
    assert store.get("sid") is None
    _warm(store, "sid", {"user": "grace"})


def test_unknown_session_ids_are_never_kept(store: RedisStore) -> None:
    """Anonymous traffic with made-up cookies must not grow the cache."""
    _warm(store, "sid", {"user": "ada"})
    for _ in range(1000):
        assert store.get(secrets.token_urlsafe(32)) is None
    assert store._near is not None
    assert store._near.size == 1


def test_the_cache_holds_at_most_its_bytes(child: RedisChild, other: redis.Redis) -> None:
    store = RedisStore(child.url, prefix="t:", near_cache=20_000)
    try:
        records = {f"s{n}": {"n": n, "blob": "x" * 5_000} for n in range(10)}
        for sid, record in records.items():
            store.set(sid, record, 60)
        for _ in range(3):
            for sid, record in records.items():
                assert store.get(sid) == record
        assert store._near is not None
        assert 1 <= store._near.size <= 3
    finally:
        store.close()


def test_near_cache_zero_reads_every_session_from_redis(
    child: RedisChild, other: redis.Redis
) -> None:
    store = from_url(f"{child.url}?prefix=t:&near_cache=0")
    assert isinstance(store, RedisStore)
    try:
        store.set("sid", {"user": "ada"}, 60)
        before = _gets(other)
        for _ in range(10):
            assert store.get("sid") == {"user": "ada"}
        assert _gets(other) - before == 10
    finally:
        store.close()


@pytest.mark.parametrize("value", ["-1", "lots", "1.5"])
def test_near_cache_must_be_a_number_of_bytes(value: str) -> None:
    from entra_ciam.errors import ConfigError

    with pytest.raises(ConfigError, match="near_cache"):
        from_url(f"redis://127.0.0.1:6379/0?near_cache={value}")


def test_a_redis_that_refuses_tracking_is_read_every_time(
    child: RedisChild, other: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL user without CLIENT (or a Redis before 6): one warning, and every read is a GET."""
    other.acl_setuser(
        "app", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all", "-client"]
    )
    store = RedisStore(f"redis://app:s3cret@127.0.0.1:{child.port}/0", prefix="t:")
    try:
        store.set("sid", {"user": "ada"}, 60)
        before = _gets(other)
        with caplog.at_level(logging.WARNING, logger="entra_ciam.sessions"):
            for _ in range(10):
                assert store.get("sid") == {"user": "ada"}
        assert _gets(other) - before == 10
        warnings = [
            r.getMessage() for r in caplog.records if "reads every session" in r.getMessage()
        ]
        assert len(warnings) == 1
        assert "s3cret" not in warnings[0]
    finally:
        store.close()


def test_readers_in_many_threads_end_on_the_last_write(
    store: RedisStore, other: redis.Redis
) -> None:
    """Threads reading one session while another process rewrites it: once the writes stop,
    every thread reads the last one (no stale copy survives a race of reply and message)."""
    _warm(store, "sid", {"n": -1})
    stop = threading.Event()
    wrong: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            got = store.get("sid")
            if not (isinstance(got, dict) and isinstance(got.get("n"), int)):
                wrong.append(got)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for n in range(300):
            other.set("t:sid", encode_record({"n": n}), px=60_000)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    _settled(other)
    assert wrong == []
    finals = []

    def final() -> None:
        finals.append(store.get("sid"))

    readers = [threading.Thread(target=final) for _ in range(8)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    assert finals == [{"n": 299}] * 8


def test_a_forked_worker_hears_for_itself(store: RedisStore, other: redis.Redis) -> None:
    """gunicorn --preload: the parent's listener is not the child's; the child still sees a
    write made after the fork."""
    _warm(store, "sid", {"user": "ada"})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            seen = [store.get("sid"), store.get("sid")]
            other.set("t:sid", encode_record({"user": "grace"}), px=60_000)
            _settled(other)
            seen.append(store.get("sid"))
            ok = seen == [{"user": "ada"}, {"user": "ada"}, {"user": "grace"}]
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    assert os.read(read, 10) == b"1"
    os.close(read)
    assert store.get("sid") == {"user": "grace"}  # the parent heard it too
