"""Each user's MSAL token cache, kept in their session, encrypted at rest.

The blob is Fernet (AES-128-CBC + HMAC-SHA256) under a ``MultiFernet``: the first key encrypts,
every key decrypts, so keys rotate by putting the new one first. It is rewritten only when MSAL
changed the cache, so an unchanged cache keeps the very same blob (cheap to recognise, e.g. by
hashing it). A blob no key opens (wrong key, corrupted) reads as an empty cache: the user signs
in again instead of seeing an error.

Decrypting costs tens of microseconds for a typical cache, so the plaintext of recently read
blobs is remembered in-process (bounded, keyed by the exact blob, which the HMAC authenticates):
a warm read is a dictionary lookup plus MSAL's own JSON parse.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from entra_ciam.errors import ConfigError

if TYPE_CHECKING:
    import msal

    from entra_ciam.config import EntraConfig

__all__ = ["TOKEN_CACHE_KEY", "TokenCacheCipher", "generate_key"]

TOKEN_CACHE_KEY = "entra_ciam.token_cache"  # noqa: S105 - where the blob lives inside the session data

log = logging.getLogger("entra_ciam.sessions")

_KEY_HELP = (
    "a Fernet key (32 url-safe base64-encoded bytes), made with: "
    "python -c 'import cryptography.fernet as f; print(f.Fernet.generate_key().decode())'"
)


def generate_key() -> str:
    """A new random Fernet key, as text for ``ENTRA_SESSION_SECRET``."""
    return Fernet.generate_key().decode()


class TokenCacheCipher:
    """Encrypts token caches for the session store and restores them as ``SerializableTokenCache``.

    ``keys``: one key, several keys (newest first), or one string of keys separated by commas or
    whitespace, the form ``ENTRA_SESSION_SECRET`` takes. ``memo_size`` bounds how many decrypted
    blobs are remembered (0 turns the memo off). It is the app's one cipher: the sign-in also
    seals the short-lived answer of a cross-site form_post with it (``decrypt_recent``).
    """

    def __init__(self, keys: str | bytes | Sequence[str | bytes], *, memo_size: int = 256) -> None:
        if isinstance(keys, str | bytes):
            text = keys.decode() if isinstance(keys, bytes) else keys
            key_list: list[str | bytes] = list(text.replace(",", " ").split())
        else:
            key_list = list(keys)
        if not key_list:
            raise ConfigError(
                f"The session secret (ENTRA_SESSION_SECRET) is empty; it must be {_KEY_HELP}"
            )
        fernets: list[Fernet] = []
        for position, key in enumerate(key_list, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"Key {position} of the session secret (ENTRA_SESSION_SECRET) is not valid: "
                    f"it must be {_KEY_HELP}"
                ) from exc
        self._primary = fernets[0]
        self._older = MultiFernet(fernets[1:]) if len(fernets) > 1 else None
        self._all = MultiFernet(fernets)
        self._memo: LRUCache[str, str] | None = LRUCache(memo_size) if memo_size > 0 else None
        self._memo_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: EntraConfig) -> TokenCacheCipher:
        config.require("session_secret", purpose="Keeping users' tokens in the session store")
        assert config.session_secret is not None
        return cls(config.session_secret)

    # -- text -------------------------------------------------------------------------------------

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, blob: str) -> tuple[str | None, bool]:
        """``(plaintext, stale)``: ``stale`` when only an older key opened it; None if none did."""
        if self._memo is not None:
            with self._memo_lock:
                remembered = self._memo.get(blob)
            if remembered is not None:
                return remembered, False
        token = blob.encode("ascii", "replace")
        try:
            plaintext = self._primary.decrypt(token).decode()
        except (InvalidToken, UnicodeDecodeError):
            pass
        else:
            if self._memo is not None:
                with self._memo_lock:
                    self._memo[blob] = plaintext
            return plaintext, False
        if self._older is not None:
            try:
                return self._older.decrypt(token).decode(), True
            except (InvalidToken, UnicodeDecodeError):
                pass
        return None, True

    def decrypt_recent(self, blob: str, ttl: int) -> str | None:
        """The plaintext of a blob encrypted at most ``ttl`` seconds ago, under any key; else None.

        For short-lived values handed to the browser (the sealed sign-in answer): Fernet's
        timestamp is inside the MAC, so the age cannot be forged, and a blob stamped more than a
        minute in the future is refused too. The memo is not used: it would outlive them.
        """
        try:
            return self._all.decrypt(blob.encode("ascii", "replace"), ttl=ttl).decode()
        except (InvalidToken, UnicodeDecodeError):
            return None

    def seal_json(self, purpose: str, value: Mapping[str, Any]) -> str:
        """``value`` as JSON, encrypted and stamped with the time, tagged with ``purpose`` so that
        it only ever opens as what it was sealed for."""
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
        return self.encrypt(f"entra-ciam.{purpose}:{text}")

    def open_json(self, purpose: str, blob: str, ttl: int) -> dict[str, Any] | None:
        """What ``seal_json(purpose, ...)`` sealed at most ``ttl`` seconds ago; else None."""
        plaintext = self.decrypt_recent(blob, ttl)
        tag = f"entra-ciam.{purpose}:"
        if plaintext is None or not plaintext.startswith(tag):
            return None
        try:
            value = json.loads(plaintext[len(tag) :])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    # -- MSAL caches ------------------------------------------------------------------------------

    def load(self, blob: str | None) -> msal.SerializableTokenCache:
        """A cache holding what ``blob`` holds; empty if there is no blob or no key opens it.

        When the stored blob should be replaced (unreadable, or under an older key), the cache's
        ``has_state_changed`` is set, so ``dump`` writes it back under the current key.
        """
        import msal

        cache = msal.SerializableTokenCache()
        self.load_into(cache, blob)
        return cache

    def load_into(self, cache: msal.SerializableTokenCache, blob: str | None) -> None:
        """Like ``load``, into an existing cache (one bound to a reused MSAL client).

        Whatever ``cache`` held before is replaced, whether or not ``blob`` can be read.
        """
        if not blob:
            cache.deserialize(None)
            return
        plaintext, stale = self.decrypt(blob) if isinstance(blob, str) else (None, True)
        if plaintext is not None:
            try:
                cache.deserialize(plaintext)
            except ValueError:
                plaintext = None
        if plaintext is None:
            log.warning(
                "A stored token cache could not be decrypted (wrong ENTRA_SESSION_SECRET or a "
                "corrupted record); the user must sign in again"
            )
            cache.deserialize(None)
        cache.has_state_changed = stale

    def dump(self, cache: msal.SerializableTokenCache) -> str | None:
        """The new blob if MSAL changed the cache since ``load``, else None (keep the old blob)."""
        if not cache.has_state_changed:
            return None
        # MSAL indents its JSON; compact text is a fifth smaller, so every later read is cheaper.
        compact = json.dumps(json.loads(cache.serialize()), separators=(",", ":"))
        blob = self.encrypt(compact)
        if self._memo is not None:
            with self._memo_lock:
                self._memo[blob] = compact
        return blob

    # -- inside a session -------------------------------------------------------------------------

    def load_from(self, session: MutableMapping[str, Any]) -> msal.SerializableTokenCache:
        return self.load(session.get(TOKEN_CACHE_KEY))

    def save_to(
        self, session: MutableMapping[str, Any], cache: msal.SerializableTokenCache
    ) -> bool:
        """Write the cache back into ``session`` only if it changed; True if it did."""
        blob = self.dump(cache)
        if blob is None:
            return False
        session[TOKEN_CACHE_KEY] = blob
        return True
