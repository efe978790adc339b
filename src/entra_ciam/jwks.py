"""Turn a JWKS document into verification keys, keeping only keys fit to check RSA signatures.

A document that is not JSON, has the wrong shape or holds no usable key raises ``ValueError`` so
the caller keeps its previous keys; individual unusable keys (EC, encryption keys, too short) are
skipped, because Entra publishes signing keys next to others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from entra_ciam.errors import InvalidTokenError
from entra_ciam.jose import DEFAULT_ALGORITHMS, b64url_decode

__all__ = ["MAX_JWKS_BYTES", "MIN_RSA_BITS", "parse_jwks"]

MAX_JWKS_BYTES: Final = 256 * 1024
MAX_KEYS: Final = 100
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192  # bigger moduli only make every verification slower


def parse_jwks(
    document: bytes | str | dict[str, Any],
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    *,
    max_bytes: int = MAX_JWKS_BYTES,
) -> dict[str, RSAPublicKey]:
    """``{kid: key}`` for every usable RSA signing key in ``document``; ValueError if none."""
    if isinstance(document, dict):
        doc: Any = document
    else:
        if len(document) > max_bytes:
            raise ValueError(f"the JWKS document is larger than {max_bytes} bytes")
        try:
            doc = json.loads(document)
        except (ValueError, RecursionError):
            raise ValueError("the JWKS document is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the JWKS document is not a JSON object")
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise ValueError('the JWKS document has no "keys" list')
    if len(keys) > MAX_KEYS:
        raise ValueError(f"the JWKS document holds more than {MAX_KEYS} keys")
    allowed = frozenset(algorithms)
    found: dict[str, RSAPublicKey] = {}
    ambiguous: set[str] = set()
    for jwk in keys:
        parsed = _rsa_signing_key(jwk, allowed)
        if parsed is None:
            continue
        kid, key = parsed
        if kid in found and found[kid].public_numbers() != key.public_numbers():
            ambiguous.add(kid)  # two different keys under one kid: trust neither
        found[kid] = key
    for kid in ambiguous:
        del found[kid]
    if not found:
        raise ValueError("the JWKS document holds no usable RSA signing key")
    return found


def _rsa_signing_key(jwk: object, allowed: frozenset[str]) -> tuple[str, RSAPublicKey] | None:
    """The key if ``jwk`` is an RSA public key for signatures we accept, else None."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    alg = jwk.get("alg")
    # A list or an object is no algorithm (and cannot be looked up in a set: a TypeError here
    # threw the whole document away, every good key with it).
    if alg is not None and (not isinstance(alg, str) or alg not in allowed):
        return None
    if "d" in jwk or "p" in jwk:  # a private key was published: refuse to rely on it
        return None
    n = _b64_int(jwk.get("n"))
    e = _b64_int(jwk.get("e"))
    if n is None or e is None:
        return None
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
        return None
    if e < 3 or e % 2 == 0 or e.bit_length() > 32:
        return None
    try:
        return kid, RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return None


def _b64_int(value: object) -> int | None:
    if not isinstance(value, str) or not value or len(value) > 2048:
        return None
    try:
        raw = b64url_decode(value.encode("ascii"), "key")
    except (InvalidTokenError, UnicodeEncodeError):
        return None
    return int.from_bytes(raw, "big")
