"""Entra asking us to slow down: a 429 or 503 from the token endpoint, and how long to wait.

MSAL turns a 503 into an exception without its headers and reads a 429's body as an ordinary
error, so the ``Retry-After`` Entra sends would be lost by the time our code sees the result. The
HTTP client MSAL is given sees it instead: :class:`GatedHttpClient` raises
:class:`TokenEndpointThrottled` for such an answer and, until the time Entra named has passed,
for every further POST to that endpoint, without sending it: from this process, and from every
process sharing the session store when the gate is given one (the sign-in middleware's is). So a
burst of requests meets one throttled answer, not one each; the token acquirer then waits or
fails fast. Answers MSAL finds in its cache still serve meanwhile: only the network is closed.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from entra_ciam.errors import EntraCiamError
from entra_ciam.http import FetchError

if TYPE_CHECKING:
    from entra_ciam.sessions.base import SessionStore

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "GatedHttpClient",
    "NetworkNeeded",
    "RetryAfterGate",
    "TokenEndpointThrottled",
    "retry_after_seconds",
]

DEFAULT_RETRY_AFTER = 5.0  # a 429 without a usable Retry-After (MSAL assumes the same)
MAX_RETRY_AFTER = 3600.0  # no answer closes the token endpoint for longer than an hour


class TokenEndpointThrottled(FetchError):
    """Entra answered 429/503 with ``Retry-After``, now or a moment ago: try in ``retry_after`` s."""

    def __init__(self, url: str, retry_after: float, status: int | None = None) -> None:
        said = f"answered HTTP {status}" if status is not None else "asked to wait"
        reason = f"{said}; retry in {retry_after:.0f} s"
        super().__init__(url, reason, "wait, or lower the number of token requests")
        self.args = (f"POST {url} {reason}",)
        self.retry_after = retry_after
        self.status = status


class NetworkNeeded(EntraCiamError):
    """MSAL wanted to call the token endpoint inside ``GatedHttpClient.offline()``."""


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or an HTTP date), capped; else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class RetryAfterGate:
    """Until when each URL asked not to be called, for every thread, and for every process that
    shares ``store`` (a session store; its record holds the wall-clock time, ``time.time``).

    Failures of the store are ignored here: the gate only saves calls, it never causes errors.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, store: SessionStore | None = None
    ) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self.store = store

    def remaining(self, url: str) -> float:
        with self._lock:
            until = self._until.get(url)
            left = 0.0 if until is None else until - self._clock()
            if until is not None and left <= 0:
                del self._until[url]
        if left > 0 or self.store is None:
            return max(left, 0.0)
        record = None
        with contextlib.suppress(Exception):
            record = self.store.get(_shared_key(url))
        shared = record.get("until") if record else None
        if not isinstance(shared, int | float) or isinstance(shared, bool):
            return 0.0
        left = min(float(shared) - time.time(), MAX_RETRY_AFTER)
        if left > 0:
            self._close_here(url, left)
        return max(left, 0.0)

    def close(self, url: str, seconds: float) -> None:
        self._close_here(url, seconds)
        if self.store is not None and seconds > 0:
            with contextlib.suppress(Exception):
                self.store.set(_shared_key(url), {"until": time.time() + seconds}, seconds)

    def _close_here(self, url: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._until[url] = max(until, self._until.get(url, until))


def _shared_key(url: str) -> str:
    return "throttle:" + hashlib.sha256(url.encode()).hexdigest()[:32]


class GatedHttpClient:
    """Wraps the ``http_client`` MSAL takes; POSTs go through the :class:`RetryAfterGate`.

    ``offline()`` closes it to POSTs for the calling thread alone: MSAL may answer from its
    cache, and :class:`NetworkNeeded` says it wanted Entra instead (nothing is sent).
    """

    def __init__(self, inner: Any, gate: RetryAfterGate | None = None) -> None:
        self.inner = inner
        self.gate = gate if gate is not None else RetryAfterGate()
        self._local = threading.local()

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        self._local.offline = True
        try:
            yield
        finally:
            self._local.offline = False

    def get(self, url: str, *args: Any, **kwargs: Any) -> Any:
        return self.inner.get(url, *args, **kwargs)

    def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._local, "offline", False):
            raise NetworkNeeded(url)
        waiting = self.gate.remaining(url)
        if waiting > 0:
            raise TokenEndpointThrottled(url, waiting)
        response = self.inner.post(url, *args, **kwargs)
        status = getattr(response, "status_code", 0)
        if status in (429, 503):
            headers: Mapping[str, str] = getattr(response, "headers", None) or {}
            value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
            seconds = retry_after_seconds(value, time.time())
            if seconds is None and status == 429:
                seconds = DEFAULT_RETRY_AFTER
            if seconds is not None:
                self.gate.close(url, seconds)
                raise TokenEndpointThrottled(url, seconds, status)
        return response

    def close(self) -> None:
        self.inner.close()
