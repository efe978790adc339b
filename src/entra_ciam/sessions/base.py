"""The one small protocol every session store implements.

Note for the sign-in flow (changes to the first version of this contract):

- ``pop(key)`` was added: it returns the data and deletes it in one atomic step, so when several
  threads or processes race for the same key exactly one of them gets the data. Keep single-use
  values (the auth-code-flow state, nonce and PKCE verifier) under their own key and take them
  with ``pop``, or with ``SessionManager.stash`` / ``SessionManager.take``, which namespace the key.
- ``ttl`` may be a float (seconds); stores keep at least millisecond precision.
- ``SessionStoreUnavailableError`` is the only error a store raises when its backend is gone
  (never a raw sqlite3 or redis exception); the next call after the backend returns succeeds.
- Concrete stores also have ``close()``; it is not part of the protocol.
- ``update(key, apply, ttl)`` was added (issue 13): an atomic read-modify-write, the store's
  compare-and-set. ``SessionManager`` builds on it to write only the keys a request changed (so
  concurrent requests of one session never undo each other) and to hold short leases (one token
  refresh per session at a time, across processes). ``apply`` may run more than once (a store may
  retry after a conflict), so it must be a pure function of what it is given.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from entra_ciam.errors import EntraCiamError

__all__ = [
    "DELETE",
    "Apply",
    "KeptRecord",
    "SessionData",
    "SessionStore",
    "SessionStoreUnavailableError",
    "decode_record",
    "encode_record",
]

SessionData = dict[str, Any]  # JSON-serialisable values only


class _Delete(enum.Enum):
    DELETE = "DELETE"


DELETE: Literal[_Delete.DELETE] = _Delete.DELETE
"""What an ``update`` function returns to forget the key."""

# What ``update`` calls with the data stored now (None: unknown or expired); it returns the data to
# store, None to leave the key as it is, or DELETE to forget it.
Apply = Callable[[SessionData | None], SessionData | Literal[_Delete.DELETE] | None]


class SessionStoreUnavailableError(EntraCiamError):
    """The store cannot be reached; adapters answer 503 with a sign-in-again page, never a 500."""


@runtime_checkable
class SessionStore(Protocol):
    """Keeps session data by opaque id. Every method may raise SessionStoreUnavailableError.

    ``blocking`` tells the ASGI adapter whether calls must leave the event loop (SQLite, Redis) or
    may run inline (memory).
    """

    blocking: bool

    def get(self, sid: str) -> SessionData | None:
        """The data saved under ``sid``, or None if unknown or expired."""

    def set(self, sid: str, data: SessionData, ttl: float) -> None:
        """Save ``data`` under ``sid``; it expires ``ttl`` seconds from now."""

    def delete(self, sid: str) -> None:
        """Forget ``sid``; no error if it is unknown."""

    def pop(self, sid: str) -> SessionData | None:
        """Return and forget the data under ``sid`` atomically: one winner among racing callers."""

    def update(self, sid: str, apply: Apply, ttl: float) -> SessionData | None:
        """Replace the data under ``sid`` with ``apply(current)`` atomically; return what is kept.

        Nothing else writes ``sid`` between the read and the write, in any thread or process.
        ``apply`` returns new data (saved to expire ``ttl`` seconds from now), None (nothing is
        written) or ``DELETE``. The return value is the data under ``sid`` afterwards.
        """


_CONTAINERS = (dict, list)


class KeptRecord(dict[str, Any]):
    """A record held in this process (memory store, Redis's near cache): JSON data, and where its
    nested dicts and lists are, so that every read can hand out a copy cheaply.

    ``plan`` lists each container as (index of its parent among the copies, its key or index
    in that parent), parents first. It is worked out once, when the record is kept, so a read
    copies exactly those containers, one C-level ``copy()`` each, instead of walking every value
    in Python to find them: the claims of a signed-in user are a dozen strings and numbers, which
    are immutable and shared, like the token cache blob. Built from ``data``, it holds what JSON
    gives back (anything another store would refuse or change is refused or changed here too);
    ``decoded=True`` takes the result of a ``json.loads`` nobody else holds, as it is.
    """

    __slots__ = ("plan",)

    def __init__(self, data: SessionData, *, decoded: bool = False) -> None:
        super().__init__(data if decoded else json.loads(encode_record(data)))
        plan: list[tuple[int, Any]] = []

        def walk(container: dict[str, Any] | list[Any], index: int) -> None:
            items = container.items() if isinstance(container, dict) else enumerate(container)
            for key, value in items:
                if type(value) in _CONTAINERS:
                    plan.append((index, key))
                    walk(value, len(plan))  # its copy will be copies[len(plan)]

        walk(self, 0)
        self.plan = tuple(plan)

    def deep_copy(self) -> SessionData:
        """A copy sharing nothing mutable: every container is new, strings and numbers shared.

        JSON decoding never makes two places share a container, so copying each one the plan
        lists, inside its copied parent, copies them all.
        """
        copies: list[Any] = [dict(self)]
        for parent, key in self.plan:
            inner = copies[parent][key].copy()
            copies[parent][key] = inner
            copies.append(inner)
        copied: SessionData = copies[0]
        return copied


def encode_record(data: SessionData) -> bytes:
    """The bytes every store keeps: compact JSON, so stores agree and copies never alias."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(raw: bytes | str | None) -> SessionData | None:
    """Unreadable or non-object records count as "no session" rather than a crash."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
