"""Session policy: ids, rotation, idle and absolute timeouts, and the session cookie.

The policy is pure; the store is touched only in ``load``, ``commit``, ``stash``, ``take`` and
the token acquirer's ``reload``, ``write_now`` and ``lease``, all synchronous, so one
implementation serves WSGI and ASGI (which runs them in a worker thread when ``store.blocking``).
The cookie carries only a random id; the store is keyed by a hash of it, so a copy of the store's
contents cannot be replayed as cookies.

Nothing about the cookie depends on the request: its name and ``Secure`` are fixed when the
manager is built, from configuration, because a request's ``Host`` header is whatever the last
proxy wrote (nginx forwards ``127.0.0.1:8000`` by default), not what the browser used.

Concurrent requests of one session (a page with several panels, several tabs) each load the
session, and each may change it. None may undo another: a request writes back only the keys it
changed, each only if no other request changed that key since this one read it (every key has a
version in the record), through the store's atomic ``update``. So a request that only read the
token cache never writes its stale copy back over a refreshed one, a stashed sign-in flow leaves
the tokens alone, and a session another request ended (sign-out) is not brought back.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from entra_ciam.errors import ConfigError, EntraCiamError
from entra_ciam.sessions.base import (
    DELETE,
    SessionData,
    SessionStore,
    SessionStoreUnavailableError,
)

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "LeaseTimeoutError",
    "Session",
    "SessionManager",
    "cookie_pairs",
    "default_cookie_name",
    "new_session_id",
]

DEFAULT_COOKIE_NAME = "entra_ciam_session"  # the name on http; prefixed on https
# A cookie value holding a session id (secrets.token_urlsafe(32)), maybe in quotes (RFC 6265
# allows them), maybe with spaces around it; the id is group 2.
_SID_VALUE_RE = re.compile(r'\s*(")?([A-Za-z0-9_-]{43})(?(1)")\s*')
# The same id bare, the usual cookie value: all of it is the id when deleting the id's alphabet
# from it leaves nothing (one C call, half the pattern's cost; ``str.strip`` costs twice it).
_SID_LENGTH = 43
_SID_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a valid cookie name
_PATH_RE = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")  # no ';', spaces or controls
_PREFIXES = ("__Host-", "__Secure-")  # names browsers accept only with Secure, from https
_DELETED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"

log = logging.getLogger("entra_ciam.sessions")


class LeaseTimeoutError(EntraCiamError):
    """Another request held a session's lease for longer than the caller would wait."""


def new_session_id() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def default_cookie_name(*, secure: bool, cookie_path: str = "/") -> str:
    """``__Host-entra_ciam_session`` for a Secure cookie on the whole host, else a weaker name.

    Browsers accept a ``__Host-`` cookie only with ``Secure``, from https, with ``Path=/`` and
    no ``Domain``: a sibling subdomain or a forged plain-http response cannot set one, so it
    cannot toss a session of its own into this site. ``__Secure-`` (another path) still keeps
    plain http out; without ``Secure`` (http on loopback, for development) no prefix is possible.
    """
    if not secure:
        return DEFAULT_COOKIE_NAME
    return ("__Host-" if cookie_path == "/" else "__Secure-") + DEFAULT_COOKIE_NAME


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _digest(value: str) -> str:
    """SHA-256, URL-safe base64 without padding (``base64.urlsafe_b64encode`` spelled out: it
    runs on every request, to find the session in the store)."""
    raw = hashlib.sha256(value.encode()).digest()
    # One translate drops the padding and the trailing newline (``newline=False`` would cost a
    # keyword argument, ``rstrip`` another call).
    return binascii.b2a_base64(raw).translate(_URLSAFE, b"=\n").decode()


class Session(MutableMapping[str, Any]):
    """One browser's data for one request; values must be JSON-serialisable.

    Item assignment and deletion mark the key changed (only changed keys are written back); after
    changing a nested value in place, call ``mark_modified()``. ``id`` is secret: it is the cookie
    value, so it is kept out of ``repr``.
    """

    __slots__ = (
        "_browser_id",
        "_changed",
        "_data",
        "_presented",
        "_stale_ids",
        "_versions",
        "created",
        "id",
        "last_seen",
        "modified",
    )

    # Positional parameters: every request builds one, and a class called with keyword arguments
    # takes CPython's slow path (twice the cost of the whole construction).
    def __init__(
        self,
        sid: str,
        data: SessionData,
        created: float,
        last_seen: float,
        browser_id: str | None,
        presented: bool,
        versions: dict[str, int] | None = None,
    ) -> None:
        self.id = sid
        self._data = data
        self.created = created
        self.last_seen = last_seen
        self.modified = False
        self._browser_id = browser_id  # the id the browser holds, if it is a live session
        self._presented = presented  # the request carried a cookie of our name
        self._stale_ids: list[str] = []
        self._changed: set[str] = set()  # keys set or deleted by this request
        # Each key's version when this request read it.
        self._versions: dict[str, int] = {} if versions is None else versions

    @property
    def is_new(self) -> bool:
        """True until the browser holds a cookie for this session."""
        return self._browser_id != self.id

    def mark_modified(self) -> None:
        """Some value was changed in place: every key is written back (unless changed elsewhere)."""
        self.modified = True
        self._changed.update(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """As ``Mapping.get``, in one call: it runs several times on every request."""
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._changed.add(key)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed.add(key)
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<Session new={self.is_new} modified={self.modified} keys={sorted(self._data)}>"


class SessionManager:
    """Loads the session named by the Cookie header and saves it with the right Set-Cookie.

    ``idle_timeout`` (seconds) slides: each use extends it, written back at most every
    ``touch_interval`` seconds so reads stay reads. ``absolute_timeout`` counts from creation, or
    from the last ``rotate`` (sign-in). The cookie is ``HttpOnly; SameSite=Lax; Path=/``, plus
    ``Secure`` when ``secure`` (the default; the sign-in flow decides it from the redirect URI's
    scheme). Names with the ``__Host-`` or ``__Secure-`` prefix are always Secure. Without a
    ``cookie_name``, :func:`default_cookie_name` picks one. It has no Max-Age: the server decides
    when a session ends. A request with more than one cookie of our name has no session.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        cookie_name: str | None = None,
        idle_timeout: float = 3600.0,
        absolute_timeout: float = 12 * 3600.0,
        touch_interval: float | None = None,
        cookie_path: str = "/",
        secure: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _PATH_RE.fullmatch(cookie_path):
            raise ConfigError(f"Session cookie path must start with '/', got {cookie_path!r}")
        if cookie_name is None:
            cookie_name = default_cookie_name(secure=secure, cookie_path=cookie_path)
        if not _TOKEN_RE.fullmatch(cookie_name):
            raise ConfigError(
                f"Session cookie name {cookie_name!r} is not a valid cookie name "
                f"(letters, digits and !#$%&'*+.^_`|~-). Example: {DEFAULT_COOKIE_NAME}"
            )
        if cookie_name.startswith("__Host-") and cookie_path != "/":
            raise ConfigError("A __Host- session cookie needs cookie_path='/' (browsers insist)")
        if not 0 < idle_timeout <= absolute_timeout:
            raise ConfigError(
                "Session timeouts must satisfy 0 < idle_timeout <= absolute_timeout, got "
                f"idle_timeout={idle_timeout}, absolute_timeout={absolute_timeout}"
            )
        self.store = store
        self.cookie_name = cookie_name
        self.idle_timeout = float(idle_timeout)
        self.absolute_timeout = float(absolute_timeout)
        self.touch_interval = (
            min(60.0, self.idle_timeout / 10) if touch_interval is None else touch_interval
        )
        self.cookie_path = cookie_path
        self.secure = bool(secure) or cookie_name.startswith(_PREFIXES)
        self.clock = clock
        self._attributes = f"; Path={cookie_path}; HttpOnly; SameSite=Lax" + (
            "; Secure" if self.secure else ""
        )
        # The value of each cookie of our name: one regex call for a whole header, where
        # splitting it costs a dozen calls on every request. (Stripping the value inside the
        # pattern would cost it a lookahead per character: seven times as much.)
        self._values = re.compile(r"(?:^|;)\s*" + re.escape(cookie_name) + r"\s*=([^;]*)").findall

    # -- cookies (pure) ---------------------------------------------------------------------------

    def presented_values(self, cookie_header: str | None) -> list[str]:
        """The values of the cookies of our name, in header order, as sent (spaces after a
        value are kept: see ``_well_formed``)."""
        if not cookie_header or self.cookie_name not in cookie_header:
            return []  # the common cases (no cookies, only others) without the regex
        values: list[str] = self._values(cookie_header)
        return values

    def session_id(self, cookie_header: str | None) -> str | None:
        """The id the one cookie of our name holds, if well-formed; None for none or several.

        Several cookies of one name are what cookie tossing looks like: a sibling subdomain (or a
        forged plain-http response) adds its own cookie, for a session it knows, beside the
        user's. Browsers order them by path length and age, not by who set them, so picking
        one would let the attacker choose; neither is used.
        """
        return _well_formed(self.presented_values(cookie_header))

    def cookie(self, sid: str) -> str:
        """The Set-Cookie value that hands ``sid`` to the browser."""
        return self.set_cookie(self.cookie_name, sid)

    def deletion_cookie(self) -> str:
        """The Set-Cookie value that makes the browser forget the session cookie."""
        return self.set_cookie(self.cookie_name, None)

    def set_cookie(self, name: str, value: str | None, *, max_age: int | None = None) -> str:
        """A Set-Cookie value with the session cookie's attributes, for it or a companion
        cookie (the sign-in's flow cookies); ``value=None`` deletes the cookie."""
        if value is None:
            return f"{name}=; {_DELETED}{self._attributes}"
        lifetime = "" if max_age is None else f"; Max-Age={max_age}"
        return f"{name}={value}{lifetime}{self._attributes}"

    # -- lifecycle --------------------------------------------------------------------------------

    def new(self, *, presented: bool = False) -> Session:
        """A fresh empty session; nothing is stored until it is modified and committed."""
        now = self.clock()
        # (id, data, created, last seen, the id the browser holds, whether it presented a cookie)
        return Session(new_session_id(), {}, now, now, None, presented)

    def load(self, cookie_header: str | None) -> Session:
        """The live session the cookie names, or a new empty one (unknown, expired, malformed,
        or more than one cookie of our name).

        Every request of every page runs this: the usual cookie value, one bare id, is checked
        without the pattern (``_well_formed`` covers the rest).
        """
        presented = self.presented_values(cookie_header)
        if len(presented) != 1:
            if presented:
                # Deleting "our" cookie would leave the planted one alone in the jar: answer
                # as if there were none, and let a sign-in overwrite the user's.
                log.warning(
                    "a request carried several %s cookies (a sibling subdomain or a plain-http "
                    "response may be planting one); it was given no session",
                    self.cookie_name,
                )
            return self.new()
        value = presented[0]
        # A bare id, or else one in quotes or spaces, or none at all (``_well_formed``).
        bare = (
            len(value) == _SID_LENGTH
            and value.isascii()
            and not value.encode().translate(None, _SID_ALPHABET)
        )
        sid = value if bare else _well_formed(presented)
        if sid is not None:
            key = self.store_key(sid)
            record = self.store.get(key)
            if record is not None:
                data, created, last_seen, versions = _unpack(record)
                if data is not None:
                    if not self._expired(created, last_seen, self.clock()):
                        # (id, data, created, last seen, the id the browser holds,
                        # whether it presented a cookie, each key's version)
                        return Session(sid, data, created, last_seen, sid, True, versions)
                    self.store.delete(key)
        return self.new(presented=True)

    def rotate(self, session: Session) -> None:
        """Give the session a new id (call at sign-in: no fixation); the old one dies at commit.

        The absolute timeout restarts: a signed-in session lives from sign-in.
        """
        if not session.is_new:  # a new id was never written: nothing to delete
            session._stale_ids.append(session.id)
        session.id = new_session_id()
        session.created = self.clock()
        session.modified = True

    def destroy(self, session: Session) -> None:
        """Forget the session (sign-out): its data is dropped and the cookie deleted at commit."""
        if not session.is_new:
            session._stale_ids.append(session.id)
        session._data.clear()
        session._changed.clear()
        session._versions.clear()
        session.id = new_session_id()
        session.created = session.last_seen = self.clock()
        session._browser_id = None
        session.modified = False

    def commit(self, session: Session) -> str | None:
        """Save what changed; return the Set-Cookie value to send, or None.

        Writes when the session was modified or rotated, or when ``touch_interval`` has passed
        since the last write (sliding idle timeout): a new or rotated session whole, an existing
        one key by key (see the module). Old ids from ``rotate``/``destroy`` are deleted after the
        new record is written.
        """
        now = self.clock()
        write = session.modified or (
            not session.is_new and now - session.last_seen >= self.touch_interval
        )
        cookie: str | None = None
        if write:
            ttl = self._ttl(session.created, now)
            if ttl <= 0:  # the absolute lifetime ran out during this request
                self.destroy(session)
                write = False
            else:
                session.last_seen = now
                self._write(session, session._changed, now, ttl)
                if session.is_new:
                    cookie = self.cookie(session.id)
                session._browser_id = session.id
        if session._stale_ids:  # most requests have none: no loop, no clear
            for old in session._stale_ids:
                self.store.delete(self.store_key(old))
            session._stale_ids.clear()
        if not write and session._presented and session.is_new:
            cookie = self.deletion_cookie()
            session._presented = False
        session.modified = False
        return cookie

    # -- writing key by key ----------------------------------------------------------------------

    def _write(self, session: Session, keys: Iterable[str], now: float, ttl: float) -> None:
        """Save ``keys`` of ``session`` (all of it if it was never stored under this id).

        A key another request changed since this one read it keeps the other request's value;
        a stored session that is gone (ended elsewhere) is not brought back. Afterwards the
        session holds, for ``keys``, what the store holds.
        """
        pending = set(keys)
        versions = session._versions
        if session.is_new:  # never stored under this id: nothing to merge with
            whole: SessionData = {
                "c": session.created,
                "a": now,
                "d": session._data,
                "v": {key: versions.get(key, 0) + 1 for key in session._data},
            }
            self.store.set(self.store_key(session.id), whole, ttl)
            session._versions = dict(whole["v"])
            session._changed.clear()
            return
        dropped: list[str] = []

        def merge(current: SessionData | None) -> SessionData | None:
            dropped.clear()
            if current is None:
                return None
            data, created, last_seen, stored = _unpack(current)
            if data is None:
                return None
            data = dict(data)
            written = False
            for key in pending:
                if stored.get(key, 0) != versions.get(key, 0):
                    dropped.append(key)  # changed by another request since this one read it
                    continue
                if key in session._data:
                    data[key] = session._data[key]
                else:
                    data.pop(key, None)
                stored[key] = stored.get(key, 0) + 1
                written = True
            if not written and now - last_seen < self.touch_interval:
                return None  # another request of this session wrote it just now
            return {"c": created, "a": now, "d": data, "v": stored}

        kept = self.store.update(self.store_key(session.id), merge, ttl)
        if dropped:
            log.info(
                "a concurrent request of this session changed %s first; kept its value",
                ", ".join(sorted(dropped)),
            )
        session._changed.difference_update(pending)
        if kept is not None:
            self._adopt(session, kept, pending)

    @staticmethod
    def _adopt(session: Session, record: SessionData, keys: Iterable[str]) -> None:
        """Make ``keys`` of ``session`` what ``record`` holds (value and version)."""
        data = record.get("d")
        if not isinstance(data, dict):
            return
        stored = _versions_of(record)
        for key in keys:
            if key in data:
                session._data[key] = data[key]
            else:
                session._data.pop(key, None)
            session._versions[key] = stored.get(key, 0)

    def write_now(self, session: Session, *keys: str) -> None:
        """Save the changed ones of ``keys`` now, key by key, rather than at the end of the request.

        For what other requests must see before this one ends (a refreshed token cache). A
        session not yet stored under its id is left for ``commit``.
        """
        pending = [key for key in keys if key in session._changed]
        if not pending or session.is_new:
            return
        now = self.clock()
        ttl = self._ttl(session.created, now)
        if ttl > 0:
            self._write(session, pending, now, ttl)

    @staticmethod
    def synced(session: Session, key: str) -> tuple[Any, int]:
        """The value of ``key`` this request holds and the version it read or wrote."""
        return session._data.get(key), session._versions.get(key, 0)

    @staticmethod
    def adopt(session: Session, key: str, value: Any, version: int) -> None:
        """Hold ``value`` (version ``version``) for ``key``, as another request of this session
        just stored it, unless this request changed the key itself or holds a newer version.
        """
        if key in session._changed or session._versions.get(key, 0) >= version:
            return
        if value is None:
            session._data.pop(key, None)
        else:
            session._data[key] = value
        session._versions[key] = version

    def reload(self, session: Session, *keys: str) -> bool:
        """Read ``keys`` again from the store (what other requests wrote since); False if the
        stored session is gone or expired. Keys this request changed keep its changes.
        """
        if session.is_new:
            return True  # nothing stored yet: this request's copy is the only one
        record = self.store.get(self.store_key(session.id))
        if record is None:
            return False
        data, created, last_seen, _versions = _unpack(record)
        if data is None or self._expired(created, last_seen, self.clock()):
            return False
        self._adopt(session, record, [key for key in keys if key not in session._changed])
        return True

    @contextlib.contextmanager
    def lease(self, session: Session, name: str, *, ttl: float, wait: float) -> Iterator[None]:
        """Hold ``name`` for this session alone, across threads and processes sharing the store.

        Waits at most ``wait`` seconds for another holder (LeaseTimeoutError after that). The
        lease ends with the block, or after ``ttl`` seconds if its holder died: with ``wait``
        longer than ``ttl``, a lease left by a crashed process is taken over.
        """
        key = "lease:" + _digest(f"{session.id}\x00{name}")
        owner = secrets.token_urlsafe(16)
        mine: SessionData = {"o": owner}
        deadline = time.monotonic() + wait
        pause = 0.002
        while True:
            held = self.store.update(key, lambda current: mine if current is None else None, ttl)
            if held is not None and held.get("o") == owner:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise LeaseTimeoutError(f"another request held {name!r} for over {wait:g} s")
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            with contextlib.suppress(SessionStoreUnavailableError):  # it expires anyway
                self.store.update(
                    key,
                    lambda current: DELETE if current and current.get("o") == owner else None,
                    ttl,
                )

    # -- single-use values ------------------------------------------------------------------------

    def stash(self, session: Session, name: str, data: SessionData, ttl: float) -> None:
        """Keep ``data`` for this session until taken once (auth-code-flow state, for example).

        It is bound to the session id, so it is only found again by the same browser; the session
        is marked modified so that a new visitor gets the cookie. Take it before ``rotate``.
        """
        session.modified = True
        self.store.set(self._stash_key(session.id, name), data, ttl)

    def take(self, session: Session, name: str) -> SessionData | None:
        """Return and delete what ``stash`` kept; among concurrent callers exactly one gets it."""
        return self.store.pop(self._stash_key(session.id, name))

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def store_key(sid: str) -> str:
        """Where the store keeps the session whose cookie value is ``sid``.

        Worked out on every request rather than remembered: a memo of ids to keys would keep
        live cookie values in this process, beside a store keyed by their digests.
        """
        return "s:" + _digest(sid)

    @staticmethod
    def _stash_key(sid: str, name: str) -> str:
        return "once:" + _digest(f"{sid}\x00{name}")

    def _ttl(self, created: float, now: float) -> float:
        return min(self.idle_timeout, self.absolute_timeout - (now - created))

    def _expired(self, created: float, last_seen: float, now: float) -> bool:
        return now - last_seen >= self.idle_timeout or now - created >= self.absolute_timeout


def _well_formed(values: list[str]) -> str | None:
    """The session id in the one value of our cookie, if well-formed; None for none or several."""
    if len(values) != 1:
        return None
    found = _SID_VALUE_RE.fullmatch(values[0])
    return None if found is None else found[2]


def cookie_pairs(cookie_header: str | None) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of each cookie in a Cookie header, in header order."""
    for pair in (cookie_header or "").split(";"):
        name, sep, value = pair.partition("=")
        if sep:
            yield name.strip(), value.strip()


_NUMBER = (int, float)  # a tuple: isinstance checks it faster than the union int | float


def _unpack(record: SessionData) -> tuple[SessionData | None, float, float, dict[str, int]]:
    """A stored record's data, creation and last-use times and each key's version; data None
    when the record is not one this module could have written."""
    data, created, last_seen = record.get("d"), record.get("c"), record.get("a")
    if type(data) is dict and type(created) is float and type(last_seen) is float:
        return data, created, last_seen, _versions_of(record)  # what this module writes
    if (
        not isinstance(data, dict)
        or not isinstance(created, _NUMBER)
        or not isinstance(last_seen, _NUMBER)
    ):
        return None, 0.0, 0.0, {}
    return data, float(created), float(last_seen), _versions_of(record)


def _versions_of(record: SessionData) -> dict[str, int]:
    """Each key's version in a stored record; records written before versions count as 0.

    The caller may change the dict: it is the record's own, which is the caller's too (every
    store hands out a fresh copy of a record, sharing nothing with what it keeps). Versions are
    plain ints unless a record was tampered with; then a new dict holds only those.
    """
    versions = record.get("v")
    if not isinstance(versions, dict):
        return {}
    for version in versions.values():
        if type(version) is not int:
            return {
                k: v for k, v in versions.items() if isinstance(v, int) and not isinstance(v, bool)
            }
    return versions
