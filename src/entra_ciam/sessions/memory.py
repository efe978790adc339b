"""A session store in this process's memory: for tests and single-process development servers."""

from __future__ import annotations

import threading
import time

from entra_ciam.sessions.base import DELETE, Apply, KeptRecord, SessionData

__all__ = ["MemoryStore"]

_PURGE_EVERY = 60.0  # seconds between sweeps of expired entries


class MemoryStore:
    """Keeps copies, so callers never share mutable data with the store (as with Redis).

    What is kept is the data as JSON gives it back (encoded and decoded once, when written, so
    anything another store would refuse or change is refused or changed here too); a read is a
    copy of it, made by copying the dicts and lists found when it was written (``KeptRecord``). A
    signed-in session holds a token cache blob of several kilobytes: copying shares that string,
    where decoding it again on every request would rebuild it.
    """

    blocking = False

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, KeptRecord]] = {}
        self._lock = threading.Lock()
        self._next_purge = time.monotonic() + _PURGE_EVERY

    def get(self, sid: str) -> SessionData | None:
        # One dict read is atomic, and a kept record is never changed (a write replaces it), so
        # the lock is only taken to drop an expired entry, not for every request's read.
        now = time.monotonic()
        item = self._items.get(sid)
        if item is not None and item[0] <= now:
            with self._lock:  # it may have been written again meanwhile
                item = self._items.get(sid)
                if item is not None and item[0] <= now:
                    del self._items[sid]
                    return None
        if item is None:
            return None
        return item[1].deep_copy()

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        kept = KeptRecord(data)  # refused here if not JSON
        now = time.monotonic()
        with self._lock:
            if ttl <= 0:
                self._items.pop(sid, None)
                return
            self._items[sid] = (now + ttl, kept)
            if now >= self._next_purge:
                self._purge(now)

    def delete(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)

    def pop(self, sid: str) -> SessionData | None:
        now = time.monotonic()
        with self._lock:
            item = self._items.pop(sid, None)
        if item is None or item[0] <= now:
            return None
        return dict(item[1])  # no longer in the store: nobody else holds its containers

    def update(self, sid: str, apply: Apply, ttl: float) -> SessionData | None:
        now = time.monotonic()
        with self._lock:
            item = self._items.get(sid)
            current = item[1].deep_copy() if item is not None and item[0] > now else None
            new = apply(current)
            if new is None:
                return current
            if new is DELETE or ttl <= 0:
                self._items.pop(sid, None)
                return None
            self._items[sid] = (now + ttl, KeptRecord(new))
            return new

    def close(self) -> None:
        with self._lock:
            self._items.clear()

    def _purge(self, now: float) -> None:
        expired = [sid for sid, (expires, _data) in self._items.items() if expires <= now]
        for sid in expired:
            del self._items[sid]
        self._next_purge = now + _PURGE_EVERY
