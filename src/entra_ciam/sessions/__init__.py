"""Server-side sessions: the cookie holds an opaque id, the data lives in a store."""

from entra_ciam.sessions.base import SessionStore, SessionStoreUnavailableError

__all__ = ["SessionStore", "SessionStoreUnavailableError"]
