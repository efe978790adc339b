"""The embedded default store: one SQLite file, shared by every thread and process on the host.

WAL mode lets readers and one writer work at once; ``busy_timeout`` makes writers queue for a
moment instead of failing. WAL needs a local file system (not NFS or SMB), hence "one host".
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from entra_ciam.errors import ConfigError
from entra_ciam.sessions.base import (
    DELETE,
    Apply,
    SessionData,
    SessionStoreUnavailableError,
    decode_record,
    encode_record,
)

__all__ = ["SQLiteStore"]

_TABLE = "entra_ciam_sessions"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " id TEXT PRIMARY KEY, data BLOB NOT NULL, expires REAL NOT NULL) WITHOUT ROWID",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_expires ON {_TABLE} (expires)",
)
_PURGE_EVERY = 60.0  # seconds between opportunistic sweeps of expired rows, per store object
_MAX_IDLE = 16  # idle connections kept for reuse
# Connections inherited across fork() are never used nor closed in the child: closing them there
# would drop the parent's POSIX locks on the file. They are parked here for the process's life.
_INHERITED: list[sqlite3.Connection] = []


class SQLiteStore:
    """Sessions in a SQLite file; expired rows are swept now and then while writing.

    Connections come from a small pool, one per concurrent caller, so threads never share one.
    The file is created readable by its owner only: it holds sign-in state.
    """

    blocking = True

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise ConfigError(
                f"SQLite session store needs a file path, got {self.path!r}; "
                "use memory:// for an in-process store. Example: sqlite:///var/lib/myapp/sessions.db"
            )
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise ConfigError(
                f"SQLite session store: the directory {parent!r} does not exist; create it or "
                "choose another path. Example: sqlite:///var/lib/myapp/sessions.db"
            )
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._next_purge = time.time() + _PURGE_EVERY
        self._create_file()
        with self._connection():
            pass  # open once now, so a bad path or a foreign file shows at start-up

    # -- the protocol ---------------------------------------------------------------------------

    def get(self, sid: str) -> SessionData | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT data FROM {_TABLE} WHERE id = ? AND expires > ?",  # noqa: S608
                (sid, time.time()),
            ).fetchone()
        return None if row is None else decode_record(row[0])

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        raw = encode_record(data)
        now = time.time()
        with self._connection() as conn:
            if ttl <= 0:
                conn.execute(f"DELETE FROM {_TABLE} WHERE id = ?", (sid,))  # noqa: S608
                return
            conn.execute(
                f"INSERT OR REPLACE INTO {_TABLE} (id, data, expires) VALUES (?, ?, ?)",  # noqa: S608
                (sid, raw, now + ttl),
            )
            if now >= self._next_purge:
                self._next_purge = now + _PURGE_EVERY
                conn.execute(f"DELETE FROM {_TABLE} WHERE expires <= ?", (now,))  # noqa: S608

    def delete(self, sid: str) -> None:
        with self._connection() as conn:
            conn.execute(f"DELETE FROM {_TABLE} WHERE id = ?", (sid,))  # noqa: S608

    def pop(self, sid: str) -> SessionData | None:
        def take(row: tuple[bytes, float] | None, conn: sqlite3.Connection) -> None:
            if row is not None:
                conn.execute(f"DELETE FROM {_TABLE} WHERE id = ?", (sid,))  # noqa: S608

        row = self._locked(sid, take)
        if row is None or row[1] <= time.time():
            return None
        return decode_record(row[0])

    def update(self, sid: str, apply: Apply, ttl: float) -> SessionData | None:
        kept: list[SessionData | None] = [None]

        def write(row: tuple[bytes, float] | None, conn: sqlite3.Connection) -> None:
            now = time.time()
            current = decode_record(row[0]) if row is not None and row[1] > now else None
            new = apply(current)
            if new is None:
                kept[0] = current
            elif new is DELETE or ttl <= 0:
                conn.execute(f"DELETE FROM {_TABLE} WHERE id = ?", (sid,))  # noqa: S608
            else:
                conn.execute(
                    f"INSERT OR REPLACE INTO {_TABLE} (id, data, expires) VALUES (?, ?, ?)",  # noqa: S608
                    (sid, encode_record(new), now + ttl),
                )
                kept[0] = new

        self._locked(sid, write)
        return kept[0]

    def _locked(
        self, sid: str, step: Callable[[tuple[bytes, float] | None, sqlite3.Connection], None]
    ) -> tuple[bytes, float] | None:
        """Read the row of ``sid`` and run ``step`` on it in one write transaction; the row read.

        IMMEDIATE takes the write lock before reading: no other thread or process can change the
        row between the read and ``step``'s write.
        """
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT data, expires FROM {_TABLE} WHERE id = ?",  # noqa: S608
                    (sid,),
                ).fetchone()
                step(row, conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        """Close the idle connections; the store opens new ones if used again."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- connections ----------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._checkout()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.close()  # its state is unknown: never hand it out again
            raise self._unavailable(exc) from exc
        except BaseException:
            conn.close()
            raise
        self._checkin(conn)

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._pid != os.getpid():  # we are a fork()ed child
                _INHERITED.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit; pop() opens its own transaction. timeout is SQLite's
        # busy_timeout. The pool, not the thread check, keeps a connection to one user at a time.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise SessionStoreUnavailableError(
                f"SQLite session store cannot create {self.path!r}: {exc.strerror}"
            ) from exc
        os.close(fd)

    def _unavailable(self, exc: sqlite3.Error) -> SessionStoreUnavailableError:
        return SessionStoreUnavailableError(f"SQLite session store {self.path!r}: {exc}")
