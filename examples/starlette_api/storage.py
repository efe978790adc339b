"""Todo items in SQLite, safe for several threads and several worker processes.

WAL lets readers run beside one writer; ``busy_timeout`` makes a second writer wait instead of
failing; every write is one ``BEGIN IMMEDIATE`` transaction committed before the API answers, and
``synchronous=FULL`` makes that commit durable, so an item acknowledged with 201 survives a crash.
A connection per operation keeps threads from sharing one (sqlite3 connections are not
thread-safe) and costs microseconds next to an HTTP round trip.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_DB_PATH", "MAX_ID", "TodoItem", "TodoStore"]

# Run by hand from a clone, the todo APIs keep their items in ./state/ (gitignored), apart from
# the demo's .entra-ciam/.
DEFAULT_DB_PATH = "state/todo.sqlite3"

# SQLite integers are signed 64-bit: a larger id can name no row (and would overflow sqlite3).
MAX_ID = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS todo (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS todo_owner ON todo (owner, id);
"""


@dataclass(frozen=True, slots=True)
class TodoItem:
    id: int
    owner: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TodoStore:
    """Reads and writes todo items; ``owner=None`` means every owner (app-only callers)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 10_000) -> None:
        self.path = os.fspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)  # state/ on first use
        with self._connect() as db:
            # journal_mode is stored in the file: set once, every later connection uses WAL.
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal" and self.path != ":memory:":
                raise RuntimeError(f"SQLite refused WAL mode for {self.path!r} (got {mode!r})")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: no implicit transactions; writes open their own BEGIN IMMEDIATE.
        with closing(sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000)) as db:
            db.isolation_level = None
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            db.execute("PRAGMA synchronous=FULL")
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken with the write lock up front so it cannot deadlock on upgrade."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- reads --------------------------------------------------------------------------------

    def list_items(self, owner: str | None) -> list[TodoItem]:
        with self._connect() as db:
            if owner is None:
                rows = db.execute("SELECT id, owner, description FROM todo ORDER BY id").fetchall()
            else:
                rows = db.execute(
                    "SELECT id, owner, description FROM todo WHERE owner = ? ORDER BY id", (owner,)
                ).fetchall()
        return [TodoItem(*row) for row in rows]

    def get(self, item_id: int, owner: str | None) -> TodoItem | None:
        if not 0 < item_id <= MAX_ID:
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT id, owner, description FROM todo WHERE id = ?", (item_id,)
            ).fetchone()
        item = TodoItem(*row) if row else None
        if item is None or (owner is not None and item.owner != owner):
            return None
        return item

    def ping(self) -> bool:
        with self._connect() as db:
            return bool(db.execute("SELECT 1").fetchone()[0] == 1)

    # -- writes -------------------------------------------------------------------------------

    def add(self, owner: str, description: str) -> TodoItem:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO todo (owner, description) VALUES (?, ?)", (owner, description)
            )
            item_id = cursor.lastrowid
        assert item_id is not None
        return TodoItem(item_id, owner, description)

    def update(self, item_id: int, owner: str | None, description: str) -> TodoItem | None:
        """Change the description of an item ``owner`` may see; None when there is no such item."""
        if not 0 < item_id <= MAX_ID:
            return None
        with self._write() as db:
            row = db.execute("SELECT owner FROM todo WHERE id = ?", (item_id,)).fetchone()
            if row is None or (owner is not None and row[0] != owner):
                return None
            db.execute("UPDATE todo SET description = ? WHERE id = ?", (description, item_id))
        return TodoItem(item_id, row[0], description)

    def delete(self, item_id: int, owner: str | None) -> bool:
        if not 0 < item_id <= MAX_ID:
            return False
        with self._write() as db:
            if owner is None:
                cursor = db.execute("DELETE FROM todo WHERE id = ?", (item_id,))
            else:
                cursor = db.execute("DELETE FROM todo WHERE id = ? AND owner = ?", (item_id, owner))
            return cursor.rowcount == 1
