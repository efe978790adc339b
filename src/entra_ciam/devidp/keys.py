"""Token-signing keys: persisted, published as a JWKS, rotated with a grace period.

Like Entra, the JWKS always holds the next key before it signs anything: a rotation promotes
that already-published key, so an API that fetched the keys since the last rotation validates
new tokens without refetching. The rotated-out key stays published until every token it signed
has expired (the grace period), then disappears.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import threading
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from entra_ciam.devidp.state import StateDir, StateError

__all__ = ["KeyStore", "Rotation", "SigningKey"]

_FILE = "signing-keys.json"
_STATUSES = ("current", "next", "retired")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """An RSA key with the self-signed certificate Entra's JWKS entries carry in ``x5c``."""

    private_key: rsa.RSAPrivateKey = dataclasses.field(repr=False)
    certificate: x509.Certificate = dataclasses.field(repr=False)
    created_at: float
    status: str = "next"  # "next" (published, not signing yet), "current" or "retired"
    remove_after: float | None = None

    @property
    def kid(self) -> str:
        """Entra uses the certificate's SHA-1 thumbprint (``x5t``) as the key id."""
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - a thumbprint

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "issuer": issuer,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "private_key_pem": self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii"),
            "certificate_pem": self.certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "created_at": self.created_at,
            "status": self.status,
            "remove_after": self.remove_after,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        key = serialization.load_pem_private_key(data["private_key_pem"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key")
        cert = x509.load_pem_x509_certificate(data["certificate_pem"].encode())
        status = data["status"]
        if status not in _STATUSES:
            raise ValueError(f"unknown key status {status!r}")
        return cls(
            private_key=key,
            certificate=cert,
            created_at=float(data["created_at"]),
            status=status,
            remove_after=None if data.get("remove_after") is None else float(data["remove_after"]),
        )

    @classmethod
    def generate(cls, now: float, status: str = "next") -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "entra-ciam dev-idp token signing")]
        )
        start = datetime.datetime.fromtimestamp(now, datetime.UTC) - datetime.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=5 * 365))
            .sign(key, hashes.SHA256())
        )
        return cls(private_key=key, certificate=cert, created_at=now, status=status)


@dataclasses.dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: the key that signs now, the one published next, the one retiring."""

    kid: str
    next_kid: str
    retiring: tuple[str, ...]
    remove_after: float

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "next_kid": self.next_kid,
            "retiring": list(self.retiring),
            "remove_after": self.remove_after,
        }


class KeyStore:
    """The tenant's signing keys. Thread-safe; persisted in the state folder when one is given."""

    def __init__(
        self,
        state: StateDir | None,
        *,
        clock: Callable[[], float],
        grace_period: int,
    ) -> None:
        self._state = state
        self._clock = clock
        self.grace_period = grace_period
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = self._load()
        changed = False
        if not any(k.status == "current" for k in self._keys):
            self._keys.insert(0, SigningKey.generate(self._clock(), "current"))
            changed = True
        if not any(k.status == "next" for k in self._keys):
            self._keys.insert(1, SigningKey.generate(self._clock(), "next"))
            changed = True
        if changed:
            self._save()

    # -- reading ----------------------------------------------------------------------------

    @property
    def current(self) -> SigningKey:
        """The key that signs tokens now."""
        with self._lock:
            return self._with("current")

    @property
    def next(self) -> SigningKey:
        """The key the next rotation promotes; already published."""
        with self._lock:
            return self._with("next")

    def published(self) -> list[SigningKey]:
        """The keys in the JWKS now: current, next, and retired keys still within grace."""
        with self._lock:
            self._prune()
            return sorted(self._keys, key=lambda k: _STATUSES.index(k.status))

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self.published() if k.kid == kid), None)

    def jwks(self, issuer: str) -> dict[str, Any]:
        return {"keys": [k.jwk(issuer) for k in self.published()]}

    # -- changing ---------------------------------------------------------------------------

    def rotate(self, grace_period: int | None = None) -> Rotation:
        """Sign with the published next key, publish a new next key, retire the old signer.

        The retired key stays published for ``grace_period`` seconds (default: the tenant's).
        """
        grace = self.grace_period if grace_period is None else grace_period
        if grace < 0:
            raise ValueError("grace_period must be >= 0")
        fresh = SigningKey.generate(self._clock(), "next")
        with self._lock:
            now = self._clock()
            retiring = []
            for i, key in enumerate(self._keys):
                if key.status == "current":
                    self._keys[i] = dataclasses.replace(
                        key, status="retired", remove_after=now + grace
                    )
                    retiring.append(key.kid)
                elif key.status == "next":
                    self._keys[i] = dataclasses.replace(key, status="current")
            self._keys.append(fresh)
            self._prune()
            self._save()
            return Rotation(
                kid=self._with("current").kid,
                next_kid=fresh.kid,
                retiring=tuple(retiring),
                remove_after=now + grace,
            )

    # -- helpers ----------------------------------------------------------------------------

    def _with(self, status: str) -> SigningKey:
        return next(k for k in self._keys if k.status == status)

    def _prune(self) -> None:
        now = self._clock()
        kept = [k for k in self._keys if k.remove_after is None or k.remove_after > now]
        if len(kept) != len(self._keys):
            self._keys = kept
            self._save()

    def _load(self) -> list[SigningKey]:
        if self._state is None:
            return []
        raw = self._state.read_bytes(_FILE)
        if raw is None:
            return []
        try:
            data = json.loads(raw)
            return [SigningKey.from_json(entry) for entry in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{self._state.file(_FILE)} is damaged ({type(exc).__name__}); delete it to "
                "start over with new signing keys (tokens signed before will stop validating)"
            ) from exc

    def _save(self) -> None:
        if self._state is None:
            return
        payload = {"keys": [k.to_json() for k in self._keys]}
        self._state.write_bytes(_FILE, json.dumps(payload, indent=2).encode())
