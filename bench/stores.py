"""What each session store costs a signed-in request: read and write latency, bytes per session.

A user signs in against a scripted Entra (respx: no network) and gets tokens for three APIs, so
the session is the size of a real one (the ID token's claims and the encrypted MSAL cache). That
session is copied to ``--clients`` sessions in each store (memory, SQLite, Redis at
127.0.0.1:6379 under a key prefix of its own, removed afterwards); then as many threads, one per
signed-in client, each load their session from its cookie (``SessionManager.load``: the read),
load it once more (the read of an unchanged session, what most pages do: Redis's near cache
answers it in the process), change it and save it (``SessionManager.commit``: the write), again
and again for ``--seconds``. p50 and p99 are over every operation of every thread. "Bytes per session" is the record the store
keeps (compact JSON); for Redis also what the server says the key costs (``MEMORY USAGE``).
Usage: ``python bench/stores.py [--clients 128] [--seconds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import respx  # noqa: E402
from bench.acquire import signed_in  # noqa: E402
from bench.signin_load import redis_missing  # noqa: E402
from tests.support.fake_entra import FakeEntra  # noqa: E402

from entra_ciam.sessions import SessionManager, SessionStore, from_url  # noqa: E402
from entra_ciam.sessions.base import encode_record  # noqa: E402
from entra_ciam.signin.context import USER_KEY  # noqa: E402

STORES = ("memory", "SQLite", "Redis", "Redis, no near cache")


def template_session() -> dict[str, Any]:
    """The data of a real signed-in session: claims and the encrypted cache of three tokens."""
    with respx.mock(assert_all_called=False) as router:
        signin, browser = signed_in(FakeEntra(router))
        session = signin.sessions.load(browser.request("GET", "/page").cookie_header)
        data = dict(session)
        signin.clients.close()
    if not isinstance(data.get(USER_KEY), dict):
        raise AssertionError("the template session is not signed in")
    return data


@contextlib.contextmanager
def opened(kind: str, workdir: Path) -> Iterator[SessionStore]:
    """The store, closed (and for Redis emptied of this run's keys) afterwards."""
    if kind == "memory":
        store = from_url("memory://")
    elif kind == "SQLite":
        store = from_url(f"sqlite:///{workdir / 'sessions.db'}")
    else:
        prefix = f"entra-ciam-bench:{secrets.token_hex(6)}:"
        near = "&near_cache=0" if kind != "Redis" else ""
        store = from_url(f"redis://127.0.0.1:6379/0?prefix={prefix}{near}")
    try:
        yield store
    finally:
        if kind.startswith("Redis"):
            client: Any = store.client  # type: ignore[attr-defined]
            keys = list(client.scan_iter(match=store.prefix + "*", count=1000))  # type: ignore[attr-defined]
            if keys:
                client.delete(*keys)
        store.close()  # type: ignore[attr-defined]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    kind: str, data: dict[str, Any], clients: int, seconds: float, workdir: Path
) -> dict[str, float]:
    with opened(kind, workdir) as store:
        # touch_interval=0 is not needed: every request below modifies its session.
        manager = SessionManager(store)
        cookies = []
        for _ in range(clients):
            session = manager.new()
            session.update(data)
            if manager.commit(session) is None:
                raise AssertionError("a new session got no cookie")
            cookies.append(f"{manager.cookie_name}={session.id}")
        record = {"c": time.time(), "a": time.time(), "d": data}
        record_bytes = len(encode_record(record))
        reads: list[list[float]] = [[] for _ in range(clients)]
        rereads: list[list[float]] = [[] for _ in range(clients)]
        writes: list[list[float]] = [[] for _ in range(clients)]
        failures: list[str] = []
        start_line = threading.Barrier(clients + 1)
        deadline = [0.0]

        def client(index: int) -> None:
            cookie = cookies[index]
            read, reread, write = reads[index], rereads[index], writes[index]
            start_line.wait()
            clock = time.perf_counter
            while clock() < deadline[0]:
                began = clock()
                try:
                    session = manager.load(cookie)
                    loaded = clock()
                    if session.is_new or USER_KEY not in session:
                        raise AssertionError("a signed-in session was not found")
                    again = manager.load(cookie)
                    reloaded = clock()
                    if again.get("n") != session.get("n"):
                        raise AssertionError("a read of an unchanged session differed")
                    session["n"] = index  # what a page changes: the session must be written
                    manager.commit(session)
                except Exception as exc:  # counted and reported with the store's name
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                read.append(loaded - began)
                reread.append(reloaded - loaded)
                write.append(clock() - reloaded)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        gc.collect()
        deadline[0] = time.perf_counter() + seconds
        start_line.wait()
        for thread in threads:
            thread.join(seconds + 60)
        all_reads = [v for part in reads for v in part]
        all_rereads = [v for part in rereads for v in part]
        all_writes = [v for part in writes for v in part]
        result = {
            "operations": len(all_reads),
            "read_p50_us": percentile(all_reads, 0.50) * 1e6,
            "read_p99_us": percentile(all_reads, 0.99) * 1e6,
            "reread_p50_us": percentile(all_rereads, 0.50) * 1e6,
            "reread_p99_us": percentile(all_rereads, 0.99) * 1e6,
            "write_p50_us": percentile(all_writes, 0.50) * 1e6,
            "write_p99_us": percentile(all_writes, 0.99) * 1e6,
            "record_bytes": record_bytes,
            "cookie_bytes": len(cookies[0]),
            "failures": len(failures),
            "first_failure": failures[0] if failures else None,
        }
        if kind.startswith("Redis"):
            client_: Any = store.client  # type: ignore[attr-defined]
            key = store.prefix + manager.store_key(cookies[0].partition("=")[2])  # type: ignore[attr-defined]
            result["redis_memory_usage_bytes"] = int(client_.memory_usage(key) or 0)
        return result


def run(clients: int, seconds: float) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    data = template_session()
    results: dict[str, dict[str, float]] = {}
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as workdir:
        for kind in STORES:
            if kind.startswith("Redis") and (reason := redis_missing()) is not None:
                missing[kind] = reason
                continue
            results[kind] = measure(kind, data, clients, seconds, Path(workdir))
    return results, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results, missing = run(args.clients, args.seconds)
    if args.json:
        print(
            json.dumps(
                {"clients": args.clients, "stores": results, "not_measured": missing}, indent=2
            )
        )
        return
    print(f"session read and write at {args.clients} concurrent signed-in clients (threads)")
    for kind, r in results.items():
        extra = (
            f", {r['redis_memory_usage_bytes']:,} in Redis"
            if "redis_memory_usage_bytes" in r
            else ""
        )
        print(
            f"  {kind:<20} read p50 {r['read_p50_us']:8.0f} us  p99 {r['read_p99_us']:8.0f} us   "
            f"unchanged read p50 {r['reread_p50_us']:8.0f} us  p99 {r['reread_p99_us']:8.0f} us   "
            f"write p50 {r['write_p50_us']:8.0f} us  p99 {r['write_p99_us']:8.0f} us   "
            f"{r['record_bytes']:,} bytes per session{extra}, cookie {r['cookie_bytes']} bytes, "
            f"{r['operations']:,} reads" + (f", {r['failures']} FAILED" if r["failures"] else "")
        )
    for kind, reason in missing.items():
        print(f"  {kind:<20} not measured: {reason}")


if __name__ == "__main__":
    main()
