"""Pick a session store from one URL setting (``ENTRA_SESSION_STORE``)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from entra_ciam.errors import ConfigError
from entra_ciam.sessions.base import SessionStore

if TYPE_CHECKING:
    from entra_ciam.config import EntraConfig

__all__ = ["DEFAULT_STORE_URL", "from_url", "store_from_config"]

# The embedded default: a SQLite file in the working directory, so sessions survive restarts.
DEFAULT_STORE_URL = "sqlite:entra-ciam-sessions.db"

_EXAMPLES = (
    "memory:// (one process, for tests), "
    "sqlite:///var/lib/myapp/sessions.db (one host; sqlite:relative/path.db for a relative path), "
    "redis://127.0.0.1:6379/0?prefix=myapp: (several app instances)"
)
_REDIS_OPTIONS = ("prefix", "timeout", "near_cache", "ssl_ca_certs", "ssl_cert_reqs")


def from_url(url: str) -> SessionStore:
    """``memory://``, ``sqlite:///abs/path.db``, ``sqlite:rel/path.db`` or ``redis[s]://host:port/db``.

    Redis takes ``?prefix=`` (key prefix), ``?timeout=`` (seconds) and ``?near_cache=`` (bytes of
    sessions kept in this process, 0 for none; see ``RedisStore``); for ``rediss://`` also
    ``ssl_ca_certs`` and ``ssl_cert_reqs``. Every mistake is a ConfigError that shows examples.
    """
    if not isinstance(url, str) or not url.strip():
        raise _bad("the session store URL is empty")
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _bad(f"{_redacted(url)!r} is not a URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise _bad(f"memory:// takes nothing after it, got {url!r}")
        from entra_ciam.sessions.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        return _sqlite(url, parts.netloc, parts.path, parts.query, parts.fragment)
    if scheme in ("redis", "rediss"):
        return _redis(url, scheme)
    raise _bad(f"unknown kind of store {_redacted(url)!r}")


def store_from_config(config: EntraConfig) -> SessionStore:
    """The store ``config.session_store`` names, or the SQLite default."""
    return from_url(config.session_store or DEFAULT_STORE_URL)


def _sqlite(url: str, netloc: str, path: str, query: str, fragment: str) -> SessionStore:
    if netloc:
        raise _bad(
            f"{url!r} names a host ({netloc!r}); SQLite files are local: write sqlite:///abs/path.db"
        )
    if query or fragment:
        raise _bad(f"{url!r}: a SQLite store URL takes no query or fragment")
    if path.startswith("//"):  # the SQLAlchemy spelling of an absolute path, sqlite:////abs
        path = path[1:]
    path = unquote(path)
    if not path or path.endswith("/"):
        raise _bad(f"{url!r} names no file")
    if path.lstrip("/") == ":memory:":
        raise _bad(f"{url!r}: an in-memory SQLite database is not shared; use memory://")
    from entra_ciam.sessions.sqlite import SQLiteStore

    return SQLiteStore(path)


def _redis(url: str, scheme: str) -> SessionStore:
    shown = _redacted(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise _bad(f"{shown!r}: {exc}") from exc
    if not host:
        raise _bad(f"{shown!r} names no host")
    if parts.fragment:
        raise _bad(f"{shown!r}: a Redis store URL takes no fragment")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise _bad(f"{shown!r}: the path must be a database number, got {db!r}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_REDIS_OPTIONS))
    if unknown:
        raise _bad(f"{shown!r}: unknown option(s) {', '.join(unknown)}; accepted: {_REDIS_OPTIONS}")
    if scheme == "redis" and any(k.startswith("ssl_") for k in options):
        raise _bad(f"{shown!r}: ssl_* options need rediss://")
    prefix = options.pop("prefix", None)
    if prefix is not None and not prefix:
        raise _bad(f"{shown!r}: prefix is empty")
    timeout = 2.0
    if "timeout" in options:
        try:
            timeout = float(options.pop("timeout"))
        except ValueError as exc:
            raise _bad(f"{shown!r}: timeout must be a number of seconds") from exc
        if not 0 < timeout <= 60:
            raise _bad(f"{shown!r}: timeout must be between 0 and 60 seconds")
    near_cache = options.pop("near_cache", None)
    if near_cache is not None and not near_cache.isdigit():
        raise _bad(f"{shown!r}: near_cache must be a number of bytes (0 turns it off)")
    client_url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(options), ""))
    from entra_ciam.sessions.redis import DEFAULT_PREFIX, NEAR_CACHE_BYTES, RedisStore

    return RedisStore(
        client_url,
        prefix=prefix or DEFAULT_PREFIX,
        timeout=timeout,
        near_cache=NEAR_CACHE_BYTES if near_cache is None else int(near_cache),
    )


def _redacted(url: str) -> str:
    """The URL without a password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))
    except ValueError:
        return "<unparseable URL>"


def _bad(problem: str) -> ConfigError:
    return ConfigError(
        f"Invalid session store (ENTRA_SESSION_STORE): {problem}. Examples: {_EXAMPLES}"
    )
