"""One call in flight per key in this process; callers arriving meanwhile share its outcome.

Threads (WSGI servers, Starlette's sync endpoints) and asyncio tasks join the same flight: the
first caller leads and runs the work, in its own thread or in a worker thread for a task; the
others wait on one ``concurrent.futures.Future``, with ``result()`` or, in the event loop, by
awaiting it without holding a thread. The flight ends when the work does, so a caller arriving
later starts a new one (and sees what the last one left in the store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["Flights"]

T = TypeVar("T")


class Flights(Generic[T]):
    """The calls in flight, by key."""

    def __init__(self) -> None:
        self._running: dict[Hashable, Future[T]] = {}
        self._lock = threading.Lock()

    def join(self, key: Hashable) -> tuple[Future[T], bool]:
        """The flight for ``key`` and whether the caller leads it (and must call ``lead``)."""
        with self._lock:
            future = self._running.get(key)
            if future is not None:
                return future, False
            future = Future()
            # Running futures cannot be cancelled: a follower giving up (a cancelled task, a
            # timeout) leaves the flight to the others.
            future.set_running_or_notify_cancel()
            self._running[key] = future
            return future, True

    def lead(self, key: Hashable, future: Future[T], work: Callable[[], T]) -> None:
        """Run ``work`` and hand its result (or exception) to everyone in the flight."""
        try:
            outcome = work()
        except BaseException as exc:
            self._end(key, future)
            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._end(key, future)
            future.set_result(outcome)

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)

    def _end(self, key: Hashable, future: Future[T]) -> None:
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]
