"""The store for several app instances behind a load balancer: sessions live in Redis.

``redis`` is imported here only, when a store is made (``pip install entra-ciam[redis]``).
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from entra_ciam.errors import ConfigError
from entra_ciam.sessions.base import (
    DELETE,
    Apply,
    SessionData,
    SessionStoreUnavailableError,
    decode_record,
    encode_record,
)
from entra_ciam.sessions.nearcache import NearCache, Ticket

if TYPE_CHECKING:
    import redis as redis_lib

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "entra-ciam:session:"
# Connections per store (and process), opened as needed. More concurrent calls than this wait for
# one (up to the store's timeout); a threaded server rarely has this many requests in flight.
MAX_CONNECTIONS = 256
# The near cache's bound (see entra_ciam.sessions.nearcache): a signed-in session is ~11 KB.
NEAR_CACHE_BYTES = 32 * 1024 * 1024
# ``update`` is optimistic (WATCH, then MULTI/EXEC): it starts again when another client wrote
# the key in between, at most this many times. Writers of one key are one user's requests.
_UPDATE_ATTEMPTS = 64
_TRACKING = "_entra_ciam_tracking"  # on a read connection: the listener id its reads report to


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "The Redis session store needs the redis package: pip install 'entra-ciam[redis]'"
        ) from exc
    return redis


class RedisStore:
    """Each session is one Redis string with an expiry, under ``prefix + id``.

    Give either a URL (``redis://host:port/db`` or ``rediss://...``) or a ready ``redis.Redis``
    client. A URL-made client fails fast (short timeouts, one immediate retry to replace a pooled
    connection a restarted server closed), so a lost server becomes a 503 within seconds; its
    pool opens up to 256 connections, and more concurrent callers wait their turn rather than fail.
    """

    blocking = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis_lib.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 2.0,
        near_cache: int = NEAR_CACHE_BYTES,
    ) -> None:
        redis = _import_redis()
        if (url is None) == (client is None):
            raise ConfigError("RedisStore needs exactly one of url= or client=")
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._owns_client = client is None
        if client is None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            try:
                # A blocking pool: past MAX_CONNECTIONS concurrent requests wait (up to
                # ``timeout``) for a connection instead of failing at once with redis-py's
                # "Too many connections", which a busy threaded server would turn into 503s.
                pool = redis.BlockingConnectionPool.from_url(
                    url,
                    max_connections=MAX_CONNECTIONS,
                    timeout=timeout,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 1),
                )
                client = redis.Redis(connection_pool=pool)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"Invalid Redis session store URL: {exc}") from exc
        self.client: redis_lib.Redis = client
        self.prefix = prefix
        self._where = _describe(client)
        # Connections of this store's own for ``get``, the one call of every signed-in page (see
        # ``_get``); only with a client the store made, whose pool it knows.
        self._idle: queue.SimpleQueue[Any] | None = queue.SimpleQueue() if url else None
        self._made = 0
        self._made_lock = threading.Lock()
        self._pid = os.getpid()
        self._retried: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        self._refused: tuple[type[BaseException], ...] = (redis.exceptions.ResponseError,)
        if near_cache < 0:
            raise ConfigError(f"near_cache must be a number of bytes >= 0, got {near_cache}")
        self._near_bytes = near_cache if url else 0
        self._near: NearCache | None = self._new_near_cache()

    # -- the protocol ---------------------------------------------------------------------------

    def get(self, sid: str) -> SessionData | None:
        key = self.prefix + sid
        near = self._near_cache()
        ticket = None
        if near is not None:
            held = near.lookup(key)
            if held is not None:
                return held
            ticket = near.ticket()
        try:
            raw, tracked = self._get(key, ticket)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        record = decode_record(raw)
        if record is not None and tracked and near is not None and ticket is not None:
            return near.keep(key, record, len(raw), ticket)
        return record

    def _get(self, key: str, ticket: Ticket | None = None) -> tuple[Any, bool]:
        """``GET key``, on an idle connection of the store's own when there is one.

        redis-py's ``Redis.get`` spends more CPU than the round trip itself (its pool's locks
        and readiness poll, retry and observability wrappers): about 20 µs of a signed-in
        page's CPU in a threaded server. This is the same command on the same kind of
        connection, made by the client's pool with its settings. A connection goes back to the
        idle list only after a whole command and reply, or disconnected (it reconnects on its
        next command), so no reply can be left on it for the next caller. As with the client, a
        connection the server closed (a restart) is retried once.

        With a ``ticket`` the read is made on a connection whose reads Redis tracks for the near
        cache's listener; the second value says whether it was (only then may the reply be kept).
        """
        if self._idle is None:
            return self.client.get(key), False
        try:
            return self._get_on(self._connection(), key, ticket)
        except self._retried:
            return self._get_on(self._connection(), key, ticket)

    def _get_on(self, connection: Any, key: str, ticket: Ticket | None) -> tuple[Any, bool]:
        if connection is None:  # as many as the pool allows are in use: wait for the pool's
            return self.client.get(key), False
        assert self._idle is not None
        listener = None if ticket is None else ticket[0]
        tracked = False
        try:
            if listener is not None:
                tracked = self._track(connection, listener)
            connection.send_command("GET", key)
            raw = connection.read_response()
            # A reconnect inside send_command (the server had closed the socket) starts untracked.
            tracked = tracked and getattr(connection, _TRACKING, None) == listener
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._idle.put(connection)
        return raw, tracked

    def _track(self, connection: Any, listener_id: int) -> bool:
        """Have Redis report changes to what ``connection`` reads to the listener ``listener_id``."""
        if getattr(connection, _TRACKING, None) == listener_id:
            return True
        connection.connect()  # if it is not: now, so no reconnect can follow the TRACKING command
        connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id)
        try:
            connection.read_response()
        except self._refused as exc:
            near = self._near
            if near is not None:
                if "redirect" in str(exc).lower():  # the listener died since the ticket
                    near.lost()
                else:  # Redis before 6, or an ACL without CLIENT: never
                    near.disable(f"Redis refused CLIENT TRACKING ({exc})")
            return False
        setattr(connection, _TRACKING, listener_id)
        return True

    def _untracked(self, connection: Any) -> None:
        """redis-py's connect callback: a new socket has no tracking (Redis forgot the old one)."""
        setattr(connection, _TRACKING, None)

    def _near_cache(self) -> NearCache | None:
        if os.getpid() != self._pid:
            self._after_fork()
        return self._near

    def _new_near_cache(self) -> NearCache | None:
        if not self._near_bytes:
            return None
        pool = self.client.connection_pool
        # The listener speaks RESP2 (plain SUBSCRIBE replies); redis-py's maintenance
        # notifications need RESP3, so the pool's settings for them are left out.
        settings = {
            k: v for k, v in pool.connection_kwargs.items() if not k.startswith("maint_notif")
        }

        def connect(*, protocol: int) -> Any:
            # No health check: redis-py's expects a plain PONG, which a subscribed connection
            # does not send; the near cache checks its listener itself.
            kwargs = {**settings, "protocol": protocol, "health_check_interval": 0}
            connection = pool.connection_class(**kwargs)
            connection.connect()
            return connection

        return NearCache(connect, max_bytes=self._near_bytes, refused=self._refused)

    def _connection(self) -> Any:
        """An idle connection for ``_get``, a new one, or None past MAX_CONNECTIONS."""
        assert self._idle is not None
        if os.getpid() != self._pid:
            self._after_fork()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._new_connection()

    def _after_fork(self) -> None:
        """A forked worker (gunicorn --preload) must never share the parent's sockets: drop the
        inherited ones without closing them (they are the parent's), as redis-py's own pool does
        after a fork, and start a near cache of its own (the parent's listener hears for it)."""
        self._idle = queue.SimpleQueue()
        self._made = 0
        self._near = self._new_near_cache()
        self._pid = os.getpid()

    def _new_connection(self) -> Any:
        """A connection for ``_get``, or None when this store already made MAX_CONNECTIONS."""
        with self._made_lock:
            if self._made >= MAX_CONNECTIONS:
                return None
            self._made += 1
        connection = self.client.connection_pool.make_connection()
        connection.register_connect_callback(self._untracked)  # type: ignore[no-untyped-call]
        return connection

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        raw = encode_record(data)
        self._forget(self.prefix + sid)
        try:
            if ttl <= 0:
                self.client.delete(self.prefix + sid)
            else:
                self.client.set(self.prefix + sid, raw, px=max(1, round(ttl * 1000)))
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    def delete(self, sid: str) -> None:
        self._forget(self.prefix + sid)
        try:
            self.client.delete(self.prefix + sid)
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    def pop(self, sid: str) -> SessionData | None:
        key = self.prefix + sid
        self._forget(key)
        try:
            # MULTI/EXEC: GET and DEL run as one step on the server (GETDEL needs Redis 6.2).
            with self.client.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.delete(key)
                raw, _deleted = pipe.execute()
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return decode_record(raw)

    def update(self, sid: str, apply: Apply, ttl: float) -> SessionData | None:
        from redis.exceptions import WatchError

        key = self.prefix + sid
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for attempt in range(_UPDATE_ATTEMPTS):
                    try:
                        pipe.watch(key)  # type: ignore[no-untyped-call]
                        current = decode_record(pipe.get(key))
                        new = apply(current)
                        if new is None:
                            pipe.unwatch()
                            return current
                        pipe.multi()
                        self._forget(key)
                        if new is DELETE or ttl <= 0:
                            pipe.delete(key)
                        else:
                            pipe.set(key, encode_record(new), px=max(1, round(ttl * 1000)))
                        pipe.execute()
                        return None if new is DELETE or ttl <= 0 else new
                    except WatchError:
                        if attempt >= 8:  # many writers at once: let them through first
                            time.sleep(random.uniform(0, 0.002 * attempt))  # noqa: S311
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        raise SessionStoreUnavailableError(
            f"Redis session store at {self._where}: {_UPDATE_ATTEMPTS} concurrent writes to one "
            "key in a row; giving up"
        )

    def _forget(self, key: str) -> None:
        """Before this process writes ``key``: no copy of it may outlive the write."""
        near = self._near_cache()
        if near is not None:
            near.forget(key)

    def close(self) -> None:
        """Close the client if this store made it; a client passed in belongs to the caller."""
        if self._near is not None:
            self._near.lost()
        if self._idle is not None:
            while True:
                try:
                    self._idle.get_nowait().disconnect()
                except queue.Empty:
                    break
        if self._owns_client:
            self.client.close()
            self.client.connection_pool.disconnect()  # a pool passed in is not closed with it

    def __repr__(self) -> str:
        return f"RedisStore({self._where}, prefix={self.prefix!r})"

    def _unavailable(self, exc: BaseException) -> SessionStoreUnavailableError:
        return SessionStoreUnavailableError(
            f"Redis session store at {self._where} is unavailable: {type(exc).__name__}: {exc}"
        )


def _describe(client: Any) -> str:
    """host:port/db of the client, never its password."""
    try:
        kw = client.connection_pool.connection_kwargs
    except AttributeError:
        return "redis"
    if "path" in kw:
        return f"unix:{kw['path']}"
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
