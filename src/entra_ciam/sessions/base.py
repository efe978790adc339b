"""The one small protocol every session store implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["SessionData", "SessionStore", "SessionStoreUnavailableError"]

SessionData = dict[str, Any]  # JSON-serialisable values only


class SessionStoreUnavailableError(Exception):
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

    def set(self, sid: str, data: SessionData, ttl: int) -> None:
        """Save ``data`` under ``sid``; it expires ``ttl`` seconds from now."""

    def delete(self, sid: str) -> None:
        """Forget ``sid``; no error if it is unknown."""
