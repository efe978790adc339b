"""The tenant's users: the ones the registrations file lists plus the ones who signed up.

Signed-up users persist in the state folder with a scrypt password hash, so an account made on
Monday still signs in on Tuesday.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import threading

from entra_ciam.devidp.registrations import Registrations, User, user_oid
from entra_ciam.devidp.state import StateDir, StateError

__all__ = ["UserDirectory"]

_FILE = "users.json"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


@dataclasses.dataclass(frozen=True, slots=True)
class _SignedUp:
    user: User
    salt: bytes
    digest: bytes


class UserDirectory:
    def __init__(self, registrations: Registrations, state: StateDir | None) -> None:
        self._registrations = registrations
        self._state = state
        self._lock = threading.Lock()
        self._signed_up: dict[str, _SignedUp] = self._load()

    def find(self, email: str) -> User | None:
        email = email.strip().lower()
        configured = self._registrations.user(email)
        if configured is not None:
            return configured
        with self._lock:
            entry = self._signed_up.get(email)
        return entry.user if entry else None

    def by_oid(self, oid: str) -> User | None:
        configured = self._registrations.user_by_oid(oid)
        if configured is not None:
            return configured
        with self._lock:
            return next((e.user for e in self._signed_up.values() if e.user.oid == oid), None)

    def check_password(self, user: User, password: str) -> bool:
        configured = self._registrations.user(user.email)
        if configured is not None:
            return hmac.compare_digest(configured.password.encode(), password.encode())
        with self._lock:
            entry = self._signed_up.get(user.email)
        if entry is None:
            return False
        return hmac.compare_digest(entry.digest, _hash(password, entry.salt))

    def sign_up(self, email: str, password: str, display_name: str) -> User:
        email = email.strip().lower()
        salt = secrets.token_bytes(16)
        user = User(
            email=email,
            password="",  # never kept in memory or on disk for signed-up users
            display_name=display_name.strip() or email.split("@")[0],
            oid=user_oid(self._registrations.tenant.id, email),
        )
        entry = _SignedUp(user, salt, _hash(password, salt))
        with self._lock:
            if self._find_locked(email) is not None:
                raise ValueError("an account with this email already exists")
            self._signed_up[email] = entry
            self._save()
        return user

    def _find_locked(self, email: str) -> User | None:
        if self._registrations.user(email) is not None:
            return self._registrations.user(email)
        entry = self._signed_up.get(email)
        return entry.user if entry else None

    def signed_up(self) -> list[User]:
        with self._lock:
            return [e.user for e in self._signed_up.values()]

    # -- persistence ------------------------------------------------------------------------

    def _load(self) -> dict[str, _SignedUp]:
        if self._state is None:
            return {}
        raw = self._state.read_bytes(_FILE)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
            out = {}
            for item in data["users"]:
                user = User(
                    email=item["email"],
                    password="",
                    display_name=item["display_name"],
                    oid=item["oid"],
                )
                out[user.email] = _SignedUp(
                    user, base64.b64decode(item["salt"]), base64.b64decode(item["scrypt"])
                )
            return out
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{self._state.file(_FILE)} is damaged ({type(exc).__name__}); delete it to "
                "forget the users who signed up"
            ) from exc

    def _save(self) -> None:
        if self._state is None:
            return
        users = [
            {
                "email": e.user.email,
                "display_name": e.user.display_name,
                "oid": e.user.oid,
                "salt": base64.b64encode(e.salt).decode(),
                "scrypt": base64.b64encode(e.digest).decode(),
            }
            for e in self._signed_up.values()
        ]
        self._state.write_bytes(_FILE, json.dumps({"users": users}, indent=2).encode())
