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
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from entra_ciam.errors import EntraCiamError

__all__ = [
    "SessionData",
    "SessionStore",
    "SessionStoreUnavailableError",
    "decode_record",
    "encode_record",
]

SessionData = dict[str, Any]  # JSON-serialisable values only


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
