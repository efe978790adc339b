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

if TYPE_CHECKING:
    import redis as redis_lib

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "entra-ciam:session:"
# Connections per store (and process), opened as needed. More concurrent calls than this wait for
# one (up to the store's timeout); a threaded server rarely has this many requests in flight.
MAX_CONNECTIONS = 256
# ``update`` is optimistic (WATCH, then MULTI/EXEC): it starts again when another client wrote
# the key in between, at most this many times. Writers of one key are one user's requests.
_UPDATE_ATTEMPTS = 64


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

    # -- the protocol ---------------------------------------------------------------------------

    def get(self, sid: str) -> SessionData | None:
        try:
            raw = self._get(self.prefix + sid)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return decode_record(raw)

    def _get(self, key: str) -> Any:
        """``GET key``, on an idle connection of the store's own when there is one.

        redis-py's ``Redis.get`` spends more CPU than the round trip itself (its pool's locks
        and readiness poll, retry and observability wrappers): about 20 µs of a signed-in
        page's CPU in a threaded server. This is the same command on the same kind of
        connection, made by the client's pool with its settings. A connection goes back to the
        idle list only after a whole command and reply, or disconnected (it reconnects on its
        next command), so no reply can be left on it for the next caller. As with the client, a
        connection the server closed (a restart) is retried once.
        """
        if self._idle is None:
            return self.client.get(key)
        try:
            return self._get_on(self._connection(), key)
        except self._retried:
            return self._get_on(self._connection(), key)

    def _get_on(self, connection: Any, key: str) -> Any:
        if connection is None:  # as many as the pool allows are in use: wait for the pool's
            return self.client.get(key)
        assert self._idle is not None
        try:
            connection.send_command("GET", key)
            raw = connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._idle.put(connection)
        return raw

    def _connection(self) -> Any:
        """An idle connection for ``_get``, a new one, or None past MAX_CONNECTIONS."""
        assert self._idle is not None
        if os.getpid() != self._pid:
            # A forked worker (gunicorn --preload) must never share the parent's sockets: drop
            # the inherited ones without closing them (they are the parent's), as redis-py's
            # own pool does after a fork.
            self._idle = queue.SimpleQueue()
            self._made = 0
            self._pid = os.getpid()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._new_connection()

    def _new_connection(self) -> Any:
        """A connection for ``_get``, or None when this store already made MAX_CONNECTIONS."""
        with self._made_lock:
            if self._made >= MAX_CONNECTIONS:
                return None
            self._made += 1
        return self.client.connection_pool.make_connection()

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        raw = encode_record(data)
        try:
            if ttl <= 0:
                self.client.delete(self.prefix + sid)
            else:
                self.client.set(self.prefix + sid, raw, px=max(1, round(ttl * 1000)))
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    def delete(self, sid: str) -> None:
        try:
            self.client.delete(self.prefix + sid)
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    def pop(self, sid: str) -> SessionData | None:
        key = self.prefix + sid
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

    def close(self) -> None:
        """Close the client if this store made it; a client passed in belongs to the caller."""
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
