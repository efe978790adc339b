"""Sessions read from Redis, kept in this process for as long as Redis says they are unchanged.

Every page a signed-in user opens reads the session. Over Redis that read is a network round
trip, and in a threaded server it costs far more than the bytes suggest: the worker thread blocks,
the core switches to Redis and back, and the rest of the request runs on a cold cache (measured:
~300 µs of server CPU per page on a 2-core machine, against ~50 µs for the same GET in a loop).

Redis 6 added what makes a local copy safe (its "client-side caching"): with ``CLIENT TRACKING``
on a connection, the server remembers which keys that connection read and sends an invalidation
message the moment any client changes, deletes, expires or evicts one of them. Here the messages go
to one listening connection per process (``REDIRECT`` to its id, which ``SUBSCRIBE``\\ s to
``__redis__:invalidate``, so it works over RESP2 and RESP3 alike). A read whose record is held
here, and unchanged, costs no round trip.

Why a copy is never served after the change it missed:

- **Messages are applied before every hit.** A lookup first reads whatever the listening socket
  already holds. Redis queues the invalidation while it executes the write and sends it in the
  same pass of its event loop as the writer's reply, not necessarily first (microseconds apart,
  longer if Redis is descheduled between the two writes), and it answers no later command
  before that pass is over. So a read that starts after the writer's next step (a browser's next
  request, another round trip of that process) finds the message waiting; only a read racing
  the write's own reply can miss it, which is a read concurrent with the write.
- **A reply is kept only if nothing changed while it travelled.** Every invalidation (and every
  write of this process) moves an epoch; a reply is stored only when the epoch it started under is
  still current, so an invalidation that overtook the reply cannot be lost.
- **Anything uncertain empties the cache.** A lost, broken or silent listening connection (Redis
  restarted, a failover, a FLUSHALL, no answer to a PING) clears every copy, and reads go to Redis
  until a new listener is subscribed. Connections whose tracking points at an old listener are
  told the new one before their next read.
- **This process's own writes** drop the key at once (read-your-writes needs no message).

No thread: lookups drain the listening socket themselves. A lookup polls it (one system call,
no lock) and takes the drain lock only when something arrived or a PING is due; a lookup that
finds another thread draining asks Redis instead of waiting. Only records that exist are kept (a flood of unknown session ids
adds nothing), within ``max_bytes``; the least recently used go first. After a ``fork`` the child
starts empty with its own listener, as the store's own connections do.
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
import time
from typing import Any

from cachetools import LRUCache

from entra_ciam.sessions.base import KeptRecord, SessionData

__all__ = ["NearCache"]

log = logging.getLogger("entra_ciam.sessions")

CHANNEL = "__redis__:invalidate"
PING_AFTER = 1.0  # seconds of silence on the listening socket before it is asked for a PONG
SILENT_AFTER = 3.0  # seconds of silence after which no copy is trusted (a dead peer sends nothing)
_RETRY_FIRST, _RETRY_MAX = 0.05, 5.0  # back-off between attempts to subscribe again
_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP

# What a read holds between asking the cache and storing Redis's reply: the listener's client id
# (read connections must track to it) and the epoch the read started under.
Ticket = tuple[int, int]


class NearCache:
    """The in-process copies of one ``RedisStore``; see the module for why they are safe.

    ``connect`` makes a new redis-py connection with the store's settings (host, TLS, password,
    database); the listener is one of those, speaking RESP2 so ``SUBSCRIBE`` replies are plain.
    """

    def __init__(
        self, connect: Any, *, max_bytes: int, refused: tuple[type[BaseException], ...] = ()
    ) -> None:
        self._connect = connect
        self._refused = refused  # errors meaning "this Redis will never track for us"
        self._lock = threading.Lock()  # copies, epoch, listener state: always held briefly
        self._io = threading.Lock()  # the listening connection: never waited for
        self._entries: LRUCache[str, tuple[KeptRecord, int]] = LRUCache(
            max_bytes, getsizeof=lambda entry: entry[1]
        )
        self._epoch = 0
        self._listener: Any = None
        self._client_id: int | None = None  # set while subscribed
        self._fd: int | None = None  # the listening socket's, while subscribed
        self._tls: ssl.SSLSocket | None = None
        self._threads = threading.local()  # each thread's poll object for it
        self._heard = 0.0  # monotonic time of the last bytes from the listener
        self._pinged_at: float | None = None  # monotonic time of the PING awaiting its answer
        self._retry_at = 0.0
        self._retry_delay = _RETRY_FIRST
        self._disabled: str | None = None  # why Redis cannot track for us, once known

    # -- the read path -----------------------------------------------------------------------------

    def lookup(self, key: str) -> SessionData | None:
        """A copy of the record held for ``key``, current as of now; None: ask Redis.

        Only a hit needs the listener's news: a key not held costs no system call (a reply kept
        later under an out-of-date epoch is dropped by the news the next hit applies first).
        """
        if key not in self._entries and self._fd is not None:
            return None
        if not self._serve():
            return None
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry[0].deep_copy()

    def ticket(self) -> Ticket | None:
        """What a read from Redis needs to be kept (None: do not keep it)."""
        with self._lock:
            if self._client_id is None:
                return None
            return self._client_id, self._epoch

    def keep(self, key: str, record: SessionData, size: int, ticket: Ticket) -> SessionData:
        """Hold ``record``, as Redis sent it (``size`` bytes) on a connection tracking to
        ``ticket``, for ``key``; return what the reader gets: ``record`` itself when it is not
        kept, else a copy, so the cache never shares a container with a reader."""
        with self._lock:
            if (self._client_id, self._epoch) != ticket:
                return record  # something changed while the reply travelled
        kept = KeptRecord(record, decoded=True)
        with self._lock:
            if (self._client_id, self._epoch) != ticket:
                return record
            try:
                self._entries[key] = (kept, size)
            except ValueError:  # larger than the whole cache: not kept
                return record
        return kept.deep_copy()

    def forget(self, key: str) -> None:
        """This process wrote ``key``: drop its copy and any reply of it still travelling."""
        with self._lock:
            self._entries.pop(key, None)
            self._epoch += 1

    def disable(self, reason: str) -> None:
        """Redis refused tracking (before 6.0, or an ACL without CLIENT): read through, always."""
        if self._disabled is None:
            log.warning("the Redis session store reads every session from Redis: %s", reason)
        self._disabled = reason
        self.lost()

    def lost(self) -> None:
        """The listener is gone or untrustworthy: no copy survives, reads go to Redis."""
        with self._lock:
            self._entries.clear()
            self._epoch += 1
            self._client_id = None
            self._fd = None
            self._tls = None
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.disconnect()
            except Exception:  # it is being dropped either way
                log.debug("closing the Redis invalidation listener failed", exc_info=True)

    @property
    def size(self) -> int:
        """How many records are held (for tests and diagnostics)."""
        with self._lock:
            return len(self._entries)

    # -- the listening connection ------------------------------------------------------------------

    def _serve(self) -> bool:
        """Bring the copies up to date with what Redis sent; False when none may be served.

        The common case costs one ``poll`` of the listening socket and takes no lock: nothing
        arrived, the listener spoke (or answered a PING) within the last second.
        """
        if self._disabled is not None:
            return False
        fd = self._fd
        if fd is None:  # not subscribed: try now, unless someone else is trying
            if self._io.acquire(blocking=False):
                try:
                    self._subscribe()
                except self._refused as exc:  # an error reply: no such command, or not allowed
                    self.disable(f"Redis refused client-side caching ({exc})")
                except Exception as exc:  # any failure only means "ask Redis"
                    self._failed(exc)
                finally:
                    self._io.release()
            return False
        # A drain in progress may hold bytes already taken off the socket but not yet applied.
        if self._pending(fd) or self._io.locked() or time.monotonic() - self._heard >= PING_AFTER:
            if not self._io.acquire(blocking=False):
                return False  # another thread is applying what arrived: ask Redis meanwhile
            try:
                if self._fd == fd:  # still the same listener
                    self._drain()
            except Exception as exc:  # any failure only means "ask Redis"
                self._failed(exc)
                return False
            finally:
                self._io.release()
        return self._client_id is not None and time.monotonic() - self._heard < SILENT_AFTER

    def _pending(self, fd: int) -> bool:
        """Whether the listening socket holds bytes (or was closed); poll objects are per thread."""
        mine = self._threads
        if getattr(mine, "fd", None) != fd:  # first use in this thread, or a new listener
            mine.poller = select.poll()
            mine.poller.register(fd, _READABLE)
            mine.fd = fd
        tls = self._tls
        return bool(mine.poller.poll(0)) or (tls is not None and tls.pending() > 0)

    def _subscribe(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            return
        self._retry_at = now + self._retry_delay  # if this attempt fails
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)
        listener = self._connect(protocol=2)
        try:
            listener.send_command("CLIENT", "ID")
            client_id = int(listener.read_response())
            listener.send_command("SUBSCRIBE", CHANNEL)
            listener.read_response()  # [b"subscribe", channel, 1]
            sock = listener._sock  # redis-py keeps the socket there
            fd = sock.fileno()
        except BaseException:
            listener.disconnect()
            raise
        with self._lock:
            self._listener = listener
            self._client_id = client_id
            self._epoch += 1
            self._heard = time.monotonic()
            self._pinged_at = None
            # With TLS, a record OpenSSL already read is not on the socket any more.
            self._tls = sock if isinstance(sock, ssl.SSLSocket) else None
            self._fd = fd
        self._retry_delay = _RETRY_FIRST

    def _drain(self) -> None:
        listener = self._listener
        while listener.can_read(timeout=0):
            self._handle(listener.read_response())
            self._heard = time.monotonic()
            self._pinged_at = None
        now = time.monotonic()
        if self._pinged_at is not None:
            # A peer gone without a word (no FIN, no RST). Counted from the PING, not from the
            # last message: after an idle spell the first lookups find the listener long silent,
            # and one of them may come before the answer to the PING another has just sent.
            unanswered = now - self._pinged_at
            if unanswered >= SILENT_AFTER:
                raise ConnectionError(f"no answer to a PING for {unanswered:.1f} s")
        elif now - self._heard >= PING_AFTER:
            listener.send_command("PING")  # answered in the subscribed state as [b"pong", b""]
            self._pinged_at = now

    def _handle(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) != 3 or _text(message[0]) != "message":
            return  # the PONG of a liveness check, or a late subscribe confirmation
        keys = message[2]
        with self._lock:
            self._epoch += 1
            if keys is None:  # FLUSHALL / FLUSHDB
                self._entries.clear()
            else:
                for key in keys:
                    self._entries.pop(_text(key), None)

    def _failed(self, exc: Exception) -> None:
        if self._client_id is not None:
            log.warning(
                "the Redis session store lost its invalidation listener (%s); sessions are read "
                "from Redis until it is back",
                type(exc).__name__,
            )
        self.lost()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
