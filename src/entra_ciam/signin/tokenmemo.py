"""An in-process memo of users' access tokens, so a warm ``acquire_token_for_user`` skips MSAL.

MSAL answers a warm request only after the user's cache is decrypted, parsed and searched. The
memo answers it from a dictionary instead, and stays exactly as strict as MSAL:

- an entry belongs to one session (a hash of its id) and one state of that session's token cache
  (a digest of the encrypted blob): when the blob changes (a refresh, a consent, a new user) or
  the session ends (sign-out, rotation at sign-in) the entry is no longer found;
- scopes match as an exact set, so a token is never handed out for scopes it was not issued for;
- a token is served only while it has more than ``margin`` seconds left (MSAL's own refresh
  window is five minutes) and never after the refresh time Entra asked for;
- the memo is bounded (least recently used sessions go first).

It lives in one process: with several workers each one warms its own, and a token MSAL returned
in one worker is found by MSAL (not the memo) in another, so behaviour never depends on which
worker answers. Nothing here is written to disk or logged.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_MARGIN", "DEFAULT_MAXSIZE", "UserTokenMemo", "valid_until"]

DEFAULT_MAXSIZE = 4096  # sessions
DEFAULT_MARGIN = 300.0  # seconds; MSAL refreshes tokens with less than five minutes left
_SCOPE_SETS_PER_SESSION = 16

ScopeSet = frozenset[str]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def valid_until(result: Mapping[str, Any], now: float, margin: float) -> float | None:
    """Until when a token MSAL returned may be reused: ``margin`` before expiry, or None."""
    try:
        expires_in = float(result["expires_in"])
    except (KeyError, TypeError, ValueError):
        return None
    until = now + expires_in - margin
    # Entra may ask for an earlier refresh: ``refresh_in`` from the token endpoint, which MSAL
    # keeps as ``refresh_on`` and returns with cached tokens.
    refresh_in, refresh_on = result.get("refresh_in"), result.get("refresh_on")
    if isinstance(refresh_in, int | float) and not isinstance(refresh_in, bool):
        until = min(until, now + float(refresh_in))
    if isinstance(refresh_on, int | float) and not isinstance(refresh_on, bool):
        until = min(until, float(refresh_on))
    return until if until > now else None


class _SessionTokens:
    """The tokens of one session for one state of its token cache."""

    __slots__ = ("blob", "tokens", "user")

    def __init__(self, blob: bytes, user: str) -> None:
        self.blob = blob
        self.user = user
        self.tokens: dict[ScopeSet, tuple[str, float]] = {}


class UserTokenMemo:
    """Access tokens by (session, token cache state, scope set); see the module docstring.

    ``maxsize`` bounds the sessions remembered, each with at most 16 scope sets. ``clock``
    returns seconds since the epoch (``time.time``), like the ``expires_on`` MSAL keeps.
    """

    def __init__(
        self,
        maxsize: int = DEFAULT_MAXSIZE,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be 0 (no memo) or more")
        self.maxsize = maxsize
        self.margin = margin
        self.clock = clock
        self._sessions: OrderedDict[bytes, _SessionTokens] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, blob: str, user: str, scopes: ScopeSet) -> str | None:
        """The remembered token, or None: unknown, another cache state or user, or expiring."""
        sid = _digest(session_id)
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None:
                return None
            self._sessions.move_to_end(sid)
            hit = entry.tokens.get(scopes)
        if hit is None or entry.user != user or entry.blob != _digest(blob):
            return None
        token, until = hit
        return token if self.clock() < until else None

    def put(
        self,
        session_id: str,
        blob: str,
        user: str,
        tokens: Iterable[tuple[ScopeSet, str, float]],
    ) -> None:
        """Remember ``(scopes, token, valid_until)`` for this session in the cache state ``blob``.

        What the session had for another state of its cache (or another user) is dropped.
        """
        if self.maxsize == 0:
            return
        sid, state = _digest(session_id), _digest(blob)
        now = self.clock()
        fresh = [(scopes, token, until) for scopes, token, until in tokens if until > now]
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None or entry.blob != state or entry.user != user:
                entry = _SessionTokens(state, user)
                self._sessions[sid] = entry
            self._sessions.move_to_end(sid)
            for scopes, token, until in fresh:
                entry.tokens.pop(scopes, None)
                entry.tokens[scopes] = (token, until)
                while len(entry.tokens) > _SCOPE_SETS_PER_SESSION:
                    del entry.tokens[next(iter(entry.tokens))]
            while len(self._sessions) > self.maxsize:
                self._sessions.popitem(last=False)

    def forget(self, session_id: str) -> None:
        """Drop everything remembered for the session (it was signed out, rotated or ended)."""
        with self._lock:
            self._sessions.pop(_digest(session_id), None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def knows(self, session_id: str) -> bool:
        """Whether anything is remembered for the session (for tests and diagnostics)."""
        with self._lock:
            return _digest(session_id) in self._sessions

    def __len__(self) -> int:
        """How many sessions have tokens remembered."""
        with self._lock:
            return len(self._sessions)
