"""Server-side sessions: the cookie holds an opaque id, the data lives in a store.

``SessionManager`` owns the policy (ids, rotation, timeouts, the cookie); the stores only keep
bytes. ``from_url`` picks a store from ``ENTRA_SESSION_STORE``; ``TokenCacheCipher`` keeps each
user's MSAL token cache encrypted inside their session.
"""

from entra_ciam.sessions.base import (
    DELETE,
    SessionData,
    SessionStore,
    SessionStoreUnavailableError,
)
from entra_ciam.sessions.factory import DEFAULT_STORE_URL, from_url, store_from_config
from entra_ciam.sessions.manager import (
    DEFAULT_COOKIE_NAME,
    Session,
    SessionManager,
    default_cookie_name,
)
from entra_ciam.sessions.memory import MemoryStore
from entra_ciam.sessions.redis import RedisStore
from entra_ciam.sessions.sqlite import SQLiteStore
from entra_ciam.sessions.tokencache import TOKEN_CACHE_KEY, TokenCacheCipher, generate_key

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "DEFAULT_STORE_URL",
    "DELETE",
    "TOKEN_CACHE_KEY",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Session",
    "SessionData",
    "SessionManager",
    "SessionStore",
    "SessionStoreUnavailableError",
    "TokenCacheCipher",
    "default_cookie_name",
    "from_url",
    "generate_key",
    "store_from_config",
]
