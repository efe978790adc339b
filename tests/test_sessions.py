"""Every session store against one suite (memory, SQLite, Redis), then what only one store does."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from entra_ciam.errors import ConfigError
from entra_ciam.sessions import (
    MemoryStore,
    RedisStore,
    SessionManager,
    SessionStore,
    SessionStoreUnavailableError,
    SQLiteStore,
    from_url,
)
from entra_ciam.sessions.base import DELETE, decode_record, encode_record
from entra_ciam.sessions.manager import LeaseTimeoutError
from tests.support.clock import Clock
from tests.support.external import RedisChild, require_redis


class Backend:
    """Makes store instances over one backend; ``shared`` when two instances see the same data."""

    def __init__(self, name: str, make: Callable[[], SessionStore], shared: bool) -> None:
        self.name = name
        self._make = make
        self.shared = shared
        self.made: list[Any] = []

    def make(self) -> Any:
        store = self._make()
        self.made.append(store)
        return store

    def close(self) -> None:
        for store in self.made:
            store.close()


def _redis_prefix() -> str:
    return f"entra-ciam-test:{uuid.uuid4().hex}:"


def _delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def _open_backend(name: str, tmp_path: Path) -> Iterator[Backend]:
    if name == "memory":
        single = MemoryStore()
        b = Backend("memory", lambda: single, shared=False)
    elif name == "sqlite":
        path = tmp_path / "sessions.db"
        b = Backend("sqlite", lambda: SQLiteStore(path), shared=True)
    else:
        require_redis()
        prefix = _redis_prefix()
        b = Backend(
            "redis", lambda: RedisStore("redis://127.0.0.1:6379/0", prefix=prefix), shared=True
        )
    try:
        yield b
    finally:
        b.close()
        if name == "redis":
            _delete_prefix(prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with _open_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture(params=["sqlite", "redis"])
def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Backends that several app instances (store objects, processes) can share."""
    with _open_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def store(backend: Backend) -> Any:
    return backend.make()


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- the shared suite -----------------------------------------------------------------------------


def test_store_follows_the_protocol(store: Any) -> None:
    assert isinstance(store, SessionStore)
    assert store.blocking is (not isinstance(store, MemoryStore))


def test_get_set_delete(store: Any) -> None:
    assert store.get("unknown") is None
    store.delete("unknown")  # no error
    store.set("a", {"user": "ada", "n": 1, "nested": {"list": [1, "two", None]}}, 60)
    assert store.get("a") == {"user": "ada", "n": 1, "nested": {"list": [1, "two", None]}}
    store.set("a", {"user": "grace"}, 60)
    assert store.get("a") == {"user": "grace"}
    store.set("b", {"other": True}, 60)
    store.delete("a")
    assert store.get("a") is None
    assert store.get("b") == {"other": True}


def test_returned_data_is_a_copy(store: Any) -> None:
    data: dict[str, Any] = {"items": [1]}
    store.set("k", data, 60)
    data["items"].append(2)
    got = store.get("k")
    assert got == {"items": [1]}
    got["items"].append(3)
    assert store.get("k") == {"items": [1]}


def test_nested_copies_are_independent(store: Any) -> None:
    store.set("k", {"user": {"amr": ["pwd"], "claims": {"tid": "t"}}, "blob": "x" * 4096}, 60)
    first = store.get("k")
    first["user"]["amr"].append("mfa")
    first["user"]["claims"]["tid"] = "other"
    assert store.get("k") == {"user": {"amr": ["pwd"], "claims": {"tid": "t"}}, "blob": "x" * 4096}


def test_no_container_is_shared_at_any_depth(store: Any) -> None:
    kept = {"a": [[1, {"b": [2]}], {"c": {"d": []}}], "e": {"f": [{"g": "h"}]}, "blob": "x"}
    store.set("k", kept, 60)
    first, second = store.get("k"), store.get("k")
    first["a"][0][1]["b"].append(3)
    first["a"][1]["c"]["d"].append(4)
    first["e"]["f"][0]["g"] = "changed"
    first["e"]["new"] = True
    assert second == kept
    assert store.get("k") == kept
    store.update("k", lambda current: current["a"][0].append(5), 60)  # changes, returns None
    assert store.get("k") == kept


def test_values_come_back_as_json_gives_them(store: Any) -> None:
    store.set("k", {"pair": (1, 2), "n": 1.5, "none": None}, 60)
    assert store.get("k") == {"pair": [1, 2], "n": 1.5, "none": None}
    with pytest.raises(TypeError):
        store.set("bad", {"not json": object()}, 60)


def test_unicode_survives(store: Any) -> None:
    store.set("u", {"name": "Zoë 日本 \u2028"}, 60)
    assert store.get("u") == {"name": "Zoë 日本 \u2028"}


def test_ttl_expiry(store: Any) -> None:
    store.set("short", {"v": 1}, 0.3)
    store.set("long", {"v": 2}, 60)
    assert store.get("short") == {"v": 1}
    assert _wait_until(lambda: store.get("short") is None), "the entry never expired"
    assert store.pop("short") is None
    assert store.get("long") == {"v": 2}


def test_non_positive_ttl_removes(store: Any) -> None:
    store.set("k", {"v": 1}, 60)
    store.set("k", {"v": 2}, 0)
    assert store.get("k") is None


def test_pop_returns_once(store: Any) -> None:
    store.set("flow", {"state": "s1", "nonce": "n1"}, 60)
    assert store.pop("flow") == {"state": "s1", "nonce": "n1"}
    assert store.pop("flow") is None
    assert store.get("flow") is None
    assert store.pop("never") is None


def _race(backend: Backend, threads: int, run: Callable[[Any, int], None]) -> list[Any]:
    """``run(store, n)`` in ``threads`` threads started together, over two store objects when the
    backend is shared; the stores, once every thread ended without an error."""
    stores = [backend.make(), backend.make()] if backend.shared else [backend.make()]
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            run(stores[n % len(stores)], n)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=racer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not errors, errors[:3]
    return stores


def test_pop_under_concurrent_threads_has_one_winner(backend: Backend) -> None:
    """16 threads (over two store objects when the backend is shared) race for each of 25 keys."""
    first = backend.make()
    keys = [f"state-{i}" for i in range(25)]
    for i, key in enumerate(keys):
        first.set(key, {"i": i}, 60)
    threads = 16
    wins: list[list[int]] = [[] for _ in range(threads)]

    def pop_all(store: Any, n: int) -> None:
        for key in keys:
            got = store.pop(key)
            if got is not None:
                wins[n].append(got["i"])

    _race(backend, threads, pop_all)
    every_win = sorted(i for won in wins for i in won)
    assert every_win == list(range(len(keys))), "each key must be popped exactly once"


def test_two_instances_share_data(shared_backend: Backend) -> None:
    first, second = shared_backend.make(), shared_backend.make()
    first.set("k", {"from": "first"}, 60)
    assert second.get("k") == {"from": "first"}
    second.set("k", {"from": "second"}, 60)
    # The writer's next step (a browser's next request does no less): Redis may send a write's
    # reply a moment before the message that tells the other instance's near cache; anything
    # after that reply comes after the message (see entra_ciam.sessions.nearcache).
    assert second.get("another") is None
    assert first.get("k") == {"from": "second"}
    second.delete("k")
    assert second.get("another") is None
    assert first.get("k") is None


def test_update_reads_and_writes_in_one_step(store: Any) -> None:
    assert store.update("k", lambda current: None, 60) is None  # nothing there, nothing written
    assert store.get("k") is None
    assert store.update("k", lambda current: {"n": 1} if current is None else None, 60) == {"n": 1}
    assert store.update("k", lambda current: None, 60) == {"n": 1}  # left as it is
    grown = store.update("k", lambda current: {"n": (current or {"n": 0})["n"] + 1}, 60)
    assert grown == {"n": 2} and store.get("k") == {"n": 2}
    assert store.update("k", lambda current: DELETE, 60) is None
    assert store.get("k") is None
    store.set("short", {"n": 1}, 0.2)
    time.sleep(0.3)
    assert store.update("short", lambda current: {"seen": current}, 60) == {"seen": None}


def test_update_under_concurrent_threads_loses_no_write(backend: Backend) -> None:
    """16 threads (over two store objects when shared) each add 1 twenty times: 320 at the end."""
    threads, rounds = 16, 20

    def add_one(current: dict[str, Any] | None) -> dict[str, Any]:
        return {"n": (current or {"n": 0})["n"] + 1}

    def add(store: Any, n: int) -> None:
        for _ in range(rounds):
            store.update("counter", add_one, 60)

    stores = _race(backend, threads, add)
    assert stores[0].get("counter") == {"n": threads * rounds}


# -- the manager over each store ------------------------------------------------------------------


def _cookie_header(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def test_manager_round_trip(store: Any) -> None:
    manager = SessionManager(store)
    session = manager.load(None)
    session["user"] = "ada"
    set_cookie = manager.commit(session)
    assert set_cookie is not None
    again = manager.load(_cookie_header(set_cookie))
    assert again.id == session.id and dict(again) == {"user": "ada"}
    assert not again.is_new
    assert store.get(session.id) is None, "the store must be keyed by a hash of the id"
    assert store.get(SessionManager.store_key(session.id)) is not None


def test_idle_timeout_slides(store: Any) -> None:
    clock = Clock(1_000_000.0)
    manager = SessionManager(store, idle_timeout=100, absolute_timeout=1000, clock=clock)
    session = manager.load(None)
    session["user"] = "ada"
    cookie = _cookie_header(manager.commit(session) or "")
    for _ in range(5):  # used every 80 s: 400 s in all, past idle_timeout, but never idle
        clock.now += 80
        loaded = manager.load(cookie)
        assert loaded.get("user") == "ada"
        assert manager.commit(loaded) is None  # the touch writes, the cookie stays
    clock.now += 101
    expired = manager.load(cookie)
    assert expired.is_new and len(expired) == 0
    assert store.get(SessionManager.store_key(session.id)) is None, "expired record is deleted"
    assert "Max-Age=0" in (manager.commit(expired) or "")


def test_absolute_timeout_ends_a_busy_session(store: Any) -> None:
    clock = Clock(1_000_000.0)
    manager = SessionManager(store, idle_timeout=100, absolute_timeout=250, clock=clock)
    session = manager.load(None)
    session["user"] = "ada"
    cookie = _cookie_header(manager.commit(session) or "")
    clock.now += 90
    assert manager.load(cookie).get("user") == "ada"
    manager.commit(manager.load(cookie))
    clock.now += 90
    assert manager.load(cookie).get("user") == "ada"
    clock.now += 71  # 251 s after creation, 90 s after the last use
    assert manager.load(cookie).is_new


def test_store_ttl_backs_the_idle_timeout(store: Any) -> None:
    """Without any read, the record leaves the store itself once the idle timeout has passed."""
    manager = SessionManager(store, idle_timeout=0.3, absolute_timeout=60)
    session = manager.load(None)
    session["user"] = "ada"
    manager.commit(session)
    key = SessionManager.store_key(session.id)
    assert store.get(key) is not None
    assert _wait_until(lambda: store.get(key) is None)


def test_rotation_moves_data_and_kills_old_id(store: Any) -> None:
    manager = SessionManager(store)
    session = manager.load(None)
    session["flow"] = "x"
    old_cookie = _cookie_header(manager.commit(session) or "")
    loaded = manager.load(old_cookie)
    old_id = loaded.id
    manager.rotate(loaded)
    loaded["user"] = "ada"
    new_cookie = manager.commit(loaded)
    assert new_cookie is not None and old_id not in new_cookie
    assert manager.load(old_cookie).is_new, "the pre-sign-in id must be dead (no fixation)"
    assert dict(manager.load(_cookie_header(new_cookie))) == {"flow": "x", "user": "ada"}


def test_two_app_instances_serve_one_user(shared_backend: Backend) -> None:
    """Two managers over two store objects (two app instances): either serves the session."""
    app_a, app_b = SessionManager(shared_backend.make()), SessionManager(shared_backend.make())
    session = app_a.load(None)
    session["user"] = "ada"
    cookie = _cookie_header(app_a.commit(session) or "")
    on_b = app_b.load(cookie)
    assert on_b.get("user") == "ada"
    on_b["cart"] = [1, 2]
    assert app_b.commit(on_b) is None
    assert dict(app_a.load(cookie)) == {"user": "ada", "cart": [1, 2]}
    signed_out = app_a.load(cookie)
    app_a.destroy(signed_out)
    app_a.commit(signed_out)
    assert app_b.load(cookie).is_new


def test_stash_take_single_use_across_instances(backend: Backend) -> None:
    app_a = SessionManager(backend.make())
    app_b = SessionManager(backend.make()) if backend.shared else app_a
    session = app_a.load(None)
    app_a.stash(session, "flow:abc", {"nonce": "n"}, 60)
    cookie = _cookie_header(app_a.commit(session) or "")
    other = app_b.load(None)
    assert app_b.take(other, "flow:abc") is None, "another browser must not find the flow"
    same = app_b.load(cookie)
    assert app_b.take(same, "flow:abc") == {"nonce": "n"}
    assert app_a.take(app_a.load(cookie), "flow:abc") is None, "a replayed state finds nothing"


def _signed_in(manager: SessionManager) -> str:
    """A stored session with a user and a token cache; its cookie header."""
    session = manager.load(None)
    session["user"] = "ada"
    session["tokens"] = "cache-1"
    return _cookie_header(manager.commit(session) or "")


def test_concurrent_requests_of_one_session_never_undo_each_other(backend: Backend) -> None:
    """Four requests load the same session; each commits what it did, in any order."""
    app_a = SessionManager(backend.make())
    app_b = SessionManager(backend.make()) if backend.shared else app_a
    cookie = _signed_in(app_a)
    refresher, stale, stasher, shopper = (app.load(cookie) for app in (app_a, app_b, app_a, app_b))
    refresher["tokens"] = "cache-2"  # the one refresh
    app_a.commit(refresher)
    stale["tokens"] = "cache-1-changed"  # a change made to the old cache: must lose
    app_b.commit(stale)
    app_a.stash(stasher, "flow:s", {"nonce": "n"}, 60)  # a sign-in flow started: no token write
    app_a.commit(stasher)
    shopper["cart"] = [1]  # an unrelated key: kept
    app_b.commit(shopper)
    assert dict(app_a.load(cookie)) == {"user": "ada", "tokens": "cache-2", "cart": [1]}
    again = app_b.load(cookie)
    again["tokens"] = "cache-3"  # based on the latest: written
    del again["cart"]
    app_b.commit(again)
    assert dict(app_a.load(cookie)) == {"user": "ada", "tokens": "cache-3"}


def test_a_session_signed_out_elsewhere_is_not_brought_back(backend: Backend) -> None:
    manager = SessionManager(backend.make())
    cookie = _signed_in(manager)
    slow, signing_out = manager.load(cookie), manager.load(cookie)
    manager.destroy(signing_out)
    manager.commit(signing_out)
    slow["cart"] = [1]
    manager.commit(slow)
    assert manager.load(cookie).is_new
    assert not manager.reload(slow, "tokens"), "reload says the stored session is gone"


def test_write_now_and_reload_share_a_change_before_the_request_ends(backend: Backend) -> None:
    app_a = SessionManager(backend.make())
    app_b = SessionManager(backend.make()) if backend.shared else app_a
    cookie = _signed_in(app_a)
    first, second = app_a.load(cookie), app_b.load(cookie)
    first["tokens"] = "cache-2"
    app_a.write_now(first, "tokens")
    assert second["tokens"] == "cache-1"
    assert app_b.reload(second, "tokens") and second["tokens"] == "cache-2"
    second["tokens"] = "cache-3"  # now based on the latest version
    app_b.commit(second)
    app_a.commit(first)  # nothing left to write for "tokens"
    assert app_a.load(cookie)["tokens"] == "cache-3"


def test_records_written_before_versions_still_load_and_merge(store: Any) -> None:
    manager = SessionManager(store)
    cookie = _signed_in(manager)
    sid = cookie.split("=", 1)[1]
    key = SessionManager.store_key(sid)
    old = store.get(key)
    store.set(key, {"c": old["c"], "a": old["a"], "d": old["d"]}, 60)  # no "v"
    session = manager.load(cookie)
    session["tokens"] = "cache-2"
    manager.commit(session)
    assert dict(manager.load(cookie)) == {"user": "ada", "tokens": "cache-2"}


def test_lease_has_one_holder_at_a_time_across_instances(backend: Backend) -> None:
    managers = [SessionManager(backend.make()) for _ in range(2 if backend.shared else 1)]
    cookie = _signed_in(managers[0])
    inside, most = [0], [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def holder(n: int) -> None:
        manager = managers[n % len(managers)]
        try:
            with manager.lease(manager.load(cookie), "refresh", ttl=10, wait=20):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.01)
                with lock:
                    inside[0] -= 1
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=holder, args=(n,)) for n in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not errors, errors[:3]
    assert most == [1]
    other_session = managers[0].load(_signed_in(managers[0]))
    with managers[0].lease(other_session, "refresh", ttl=10, wait=0):
        pass  # another session's lease is another lease


def test_lease_of_a_dead_holder_is_taken_over_and_waiting_is_bounded(store: Any) -> None:
    manager = SessionManager(store)
    cookie = _signed_in(manager)
    dead = manager.lease(manager.load(cookie), "refresh", ttl=0.5, wait=1)
    dead.__enter__()  # a process that took the lease and was killed: it is never released
    with (
        pytest.raises(LeaseTimeoutError),
        manager.lease(manager.load(cookie), "refresh", ttl=0.5, wait=0.1),
    ):
        pass
    taken = False
    with manager.lease(manager.load(cookie), "refresh", ttl=10, wait=5):  # past the dead one's ttl
        taken = True
    assert taken, "taken over once the dead holder's lease expired"


# -- codec ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"text"', b"\xff\xfe", None])
def test_unreadable_records_read_as_no_session(raw: bytes | None) -> None:
    assert decode_record(raw) is None


def test_codec_round_trip() -> None:
    assert decode_record(encode_record({"a": [1, {"b": None}]})) == {"a": [1, {"b": None}]}


# -- SQLite ---------------------------------------------------------------------------------------


def test_sqlite_survives_reopen_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    store.set("k", {"v": 1}, 60)
    store.close()
    reopened = SQLiteStore(path)
    assert reopened.get("k") == {"v": 1}
    reopened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_sqlite_purges_expired_rows_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    for i in range(5):
        store.set(f"old{i}", {"v": i}, 0.05)
    time.sleep(0.1)
    store._next_purge = 0.0  # the sweep is due
    store.set("fresh", {"v": 1}, 60)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id FROM entra_ciam_sessions").fetchall()
    store.close()
    assert rows == [("fresh",)]


def test_sqlite_busy_database_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, busy_timeout=0.1)
    store.set("k", {"v": 1}, 60)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SessionStoreUnavailableError, match="locked"):
            store.set("k", {"v": 2}, 60)
        with pytest.raises(SessionStoreUnavailableError):
            store.pop("k")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.set("k", {"v": 3}, 60)
    assert store.pop("k") == {"v": 3}
    store.close()


def test_sqlite_foreign_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SessionStoreUnavailableError, match=r"s\.db"):
        SQLiteStore(path)


def test_sqlite_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "s.db")
    with pytest.raises(ConfigError, match="memory://"):
        SQLiteStore(":memory:")


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from entra_ciam.sessions.sqlite import SQLiteStore
    path, go, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    store = SQLiteStore(path)
    store.set(f"from-child-{n}", {"pid": n}, 60)
    deadline = time.monotonic() + 20
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    won = [i for i in range(60) if store.pop(f"race-{i}") is not None]
    print(json.dumps(won))
    """
)


def test_sqlite_across_processes(tmp_path: Path) -> None:
    """Four processes race to pop 60 keys written by this one: each key goes to exactly one."""
    path = tmp_path / "s.db"
    go = tmp_path / "go"
    store = SQLiteStore(path)
    for i in range(60):
        store.set(f"race-{i}", {"i": i}, 60)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(go), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    try:
        assert _wait_until(
            lambda: all(store.get(f"from-child-{n}") for n in range(4)), timeout=30
        ), "the children's writes never became visible here"
        go.touch()
        outputs = [c.communicate(timeout=60) for c in children]
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    won = sorted(i for out, _err in outputs for i in json.loads(out))
    assert won == list(range(60))
    store.close()


# -- Redis ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_redis_closed_port_is_unavailable_quickly() -> None:
    pytest.importorskip("redis")
    store = RedisStore(f"redis://127.0.0.1:{_free_port()}/0", prefix=_redis_prefix())
    manager = SessionManager(store)
    started = time.monotonic()
    for call in (
        lambda: store.get("k"),
        lambda: store.set("k", {}, 5),
        lambda: store.delete("k"),
        lambda: store.pop("k"),
        lambda: manager.load(f"{manager.cookie_name}=" + "a" * 43),
    ):
        with pytest.raises(SessionStoreUnavailableError, match=r"127\.0\.0\.1"):
            call()
    assert time.monotonic() - started < 5
    store.close()


@pytest.fixture
def redis_child() -> Iterator[RedisChild]:
    pytest.importorskip("redis")
    with RedisChild() as child:
        yield child


def _ada_in(redis_child: RedisChild) -> tuple[RedisStore, SessionManager, str]:
    """A store on ``redis_child`` holding a session of Ada's, and the Cookie header naming it."""
    store = RedisStore(f"redis://127.0.0.1:{redis_child.port}/0", prefix=_redis_prefix())
    manager = SessionManager(store)
    session = manager.load(None)
    session["user"] = "ada"
    cookie = _cookie_header(manager.commit(session) or "")
    assert manager.load(cookie).get("user") == "ada"
    return store, manager, cookie


def test_redis_going_away_mid_test_then_coming_back(redis_child: RedisChild) -> None:
    store, manager, cookie = _ada_in(redis_child)

    redis_child.stop()
    for call in (
        lambda: manager.load(cookie),
        lambda: store.set("k", {}, 5),
        lambda: store.pop("k"),
        lambda: store.delete("k"),
    ):
        with pytest.raises(SessionStoreUnavailableError):
            call()

    redis_child.start()  # same port; its data is gone (--save ""), the store reconnects by itself
    assert manager.load(cookie).is_new
    store.set("k", {"back": True}, 60)
    assert store.pop("k") == {"back": True}
    store.close()


def test_redis_read_survives_the_server_closing_its_connections(redis_child: RedisChild) -> None:
    """A pooled connection the server closed (idle timeout, restart, CLIENT KILL) is replaced
    on the next read, which still answers; nothing else is lost."""
    import redis

    store, manager, cookie = _ada_in(redis_child)
    admin = redis.Redis(host="127.0.0.1", port=redis_child.port)
    try:
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
        assert manager.load(cookie).get("user") == "ada"
        assert manager.load(cookie).get("user") == "ada"
    finally:
        admin.close()
        store.close()


def test_redis_concurrent_reads_each_get_their_own_record() -> None:
    """Many threads reading different sessions at once over the store's connections: every
    read answers with the record it asked for (no reply is ever left for another caller)."""
    require_redis()
    prefix = _redis_prefix()
    store = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix)
    wrong: list[tuple[int, object]] = []
    try:
        for n in range(16):
            store.set(f"k{n}", {"n": n}, 60)

        def reader(n: int) -> None:
            for _ in range(200):
                got = store.get(f"k{n}")
                if got != {"n": n}:
                    wrong.append((n, got))

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
        assert store.get("absent") is None
    finally:
        _delete_prefix(prefix)
        store.close()


def test_redis_store_over_a_client_of_the_callers() -> None:
    """Given a ready client, the store reads and writes through it and leaves it open."""
    require_redis()
    import redis

    prefix = _redis_prefix()
    client = redis.Redis(host="127.0.0.1", port=6379)
    store = RedisStore(client=client, prefix=prefix)
    try:
        store.set("k", {"v": 1}, 30)
        assert store.get("k") == {"v": 1}
        assert store.get("absent") is None
        store.close()
        assert client.get(prefix + "k") is not None  # still usable: it is the caller's
    finally:
        _delete_prefix(prefix)
        client.close()


def test_redis_keys_carry_prefix_and_expiry() -> None:
    require_redis()
    import redis

    prefix = _redis_prefix()
    store = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix)
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        store.set("k", {"v": 1}, 30)
        ttl_ms = client.pttl(prefix + "k")
        assert 0 < ttl_ms <= 30_000
    finally:
        _delete_prefix(prefix)
        client.close()
        store.close()


# -- from_url -------------------------------------------------------------------------------------


def test_from_url_memory() -> None:
    assert isinstance(from_url("memory://"), MemoryStore)


def test_from_url_sqlite_absolute_and_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = from_url(f"sqlite://{tmp_path}/abs.db")
    assert isinstance(store, SQLiteStore) and store.path == f"{tmp_path}/abs.db"
    store.close()
    store = from_url(f"sqlite:///{tmp_path}/sqlalchemy%20style.db")
    assert isinstance(store, SQLiteStore) and store.path == f"{tmp_path}/sqlalchemy style.db"
    store.close()
    monkeypatch.chdir(tmp_path)
    store = from_url("sqlite:rel.db")
    assert isinstance(store, SQLiteStore) and store.path == "rel.db"
    assert (tmp_path / "rel.db").exists()
    store.close()


def test_from_url_redis() -> None:
    pytest.importorskip("redis")
    store = from_url("redis://127.0.0.1:6390/2?prefix=myapp:&timeout=0.5")
    assert isinstance(store, RedisStore)
    assert store.prefix == "myapp:"
    kwargs = store.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
    assert kwargs["socket_timeout"] == 0.5
    store.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("postgres://db/sessions", "unknown kind"),
        ("sessions.db", "unknown kind"),
        ("memory://somewhere", "takes nothing"),
        ("sqlite://dbhost/sessions.db", "names a host"),
        ("sqlite:///tmp/", "names no file"),
        ("sqlite:///tmp/s.db?mode=ro", "no query"),
        ("sqlite:///:memory:", "memory://"),
        ("redis://127.0.0.1:notaport/0", "Port"),
        ("redis://127.0.0.1:6379/zero", "database number"),
        ("redis:///0", "no host"),
        ("redis://127.0.0.1:6379/0?prefx=a", "unknown option"),
        ("redis://127.0.0.1:6379/0?prefix=", "prefix is empty"),
        ("redis://127.0.0.1:6379/0?timeout=soon", "timeout"),
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=/x", "rediss"),
    ],
)
def test_from_url_rejects_with_examples(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        from_url(url)
    assert "Examples:" in str(info.value) or "Example:" in str(info.value)


def test_from_url_never_shows_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        from_url("redis://user:hunter2@127.0.0.1:6379/zero")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_redis_more_concurrent_callers_than_connections_wait_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_redis()
    from entra_ciam.sessions import redis as redis_store

    # A small pool, so that twice as many threads as connections stay bounded in a test.
    monkeypatch.setattr(redis_store, "MAX_CONNECTIONS", 8)
    prefix = _redis_prefix()
    store = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix)
    assert store.client.connection_pool.max_connections == 8
    manager = SessionManager(store)
    session = manager.load(None)
    session["user"] = "ada"
    cookie = _cookie_header(manager.commit(session) or "")
    callers = 8 * 2
    start_line = threading.Barrier(callers)
    failures: list[BaseException] = []
    found: list[object] = []

    def request() -> None:
        start_line.wait()
        try:
            for _ in range(20):  # a signed-in page: read the session, write it back
                loaded = manager.load(cookie)
                found.append(loaded.get("user"))
                loaded.mark_modified()
                manager.commit(loaded)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=request) for _ in range(callers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        store.close()
        _delete_prefix(prefix)
    assert failures == []
    assert found == ["ada"] * callers * 20


def test_redis_reads_in_a_forked_worker_never_share_the_parents_connection() -> None:
    """gunicorn --preload forks after the app (and its store) exist: a child must open its own."""
    require_redis()
    prefix = _redis_prefix()
    store = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix)
    try:
        store.set("sid", {"user": "ada"}, 30)
        assert store.get("sid") == {"user": "ada"}  # the parent now holds an idle connection
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: read through the store, report the connection's client id
            try:
                ok = store.get("sid") == {"user": "ada"}
                assert store._idle is not None
                connection = store._idle.get_nowait()
                connection.send_command("CLIENT", "ID")
                os.write(write, f"{int(ok)} {connection.read_response()}".encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        ok, child_id = os.read(read, 100).decode().split()
        os.close(read)
        assert ok == "1"
        inherited = store._idle.get_nowait() if store._idle is not None else None
        assert inherited is not None
        inherited.send_command("CLIENT", "ID")
        parents_reader = inherited.read_response()
        # The child's read went over a connection of its own, not the parent's socket.
        assert int(child_id) != int(parents_reader)
        assert store.get("sid") == {"user": "ada"}  # and the parent's connection is intact
    finally:
        store.delete("sid")
        store.close()
