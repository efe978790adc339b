"""Compact JWS parsing and RSA signature checks, strict and fast, with no I/O.

Only what Entra access tokens use is accepted: three base64url segments, a JSON object header
naming an allowed RSA algorithm and a ``kid``, and nothing that asks the verifier to fetch or trust
a key from the token itself. Everything else is an :class:`InvalidTokenError` whose message names
the reason without echoing the token.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from entra_ciam.errors import InvalidTokenError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "JWS",
    "MAX_TOKEN_LENGTH",
    "SUPPORTED_ALGORITHMS",
    "b64url_decode",
    "check_algorithms",
    "decode_payload",
    "parse",
    "verify",
]

MAX_TOKEN_LENGTH: Final = 16 * 1024
DEFAULT_ALGORITHMS: Final = ("RS256",)

_PSS_256 = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
_PSS_384 = padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.DIGEST_LENGTH)
_PSS_512 = padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.DIGEST_LENGTH)
# alg -> (padding, hash); built once because constructing them costs more than a dict lookup.
_ALGORITHMS: Final[dict[str, tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]]] = {
    "RS256": (padding.PKCS1v15(), hashes.SHA256()),
    "RS384": (padding.PKCS1v15(), hashes.SHA384()),
    "RS512": (padding.PKCS1v15(), hashes.SHA512()),
    "PS256": (_PSS_256, hashes.SHA256()),
    "PS384": (_PSS_384, hashes.SHA384()),
    "PS512": (_PSS_512, hashes.SHA512()),
}
SUPPORTED_ALGORITHMS: Final = frozenset(_ALGORITHMS)

# Header parameters that make the token choose its own key, change how it is processed, or mark
# it as something other than a plain signed token (RFC 7515 4.1, RFC 7797, RFC 7516).
_FORBIDDEN_HEADERS: Final = {
    "jku": "a jku header (key URL chosen by the token)",
    "x5u": "an x5u header (certificate URL chosen by the token)",
    "jwk": "a jwk header (key embedded in the token)",
    "x5c": "an x5c header (certificate chain embedded in the token)",
    "crit": "a crit header (extensions this validator does not implement)",
    "b64": "a b64 header (unencoded payload, RFC 7797)",
    "enc": "an enc header (encrypted token)",
    "zip": "a zip header (compressed payload)",
}
_ACCEPTED_TYP: Final = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
_MAX_KID_LENGTH: Final = 256

# base64url -> base64, and the characters base64url forbids ("+", "/", "=") -> "!", which the
# strict decoder refuses: one C-level pass does both the mapping and the alphabet check.
_URLSAFE_TO_STD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
# The last base64url character of a segment whose length is 2 (or 3) mod 4 carries 4 (or 2)
# padding bits, which must be zero: otherwise several strings decode to the same bytes.
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_PADDING: Final = (b"", b"", b"==", b"=")
_CANONICAL_LAST: Final = {
    2: frozenset(ord(c) for i, c in enumerate(_B64) if i % 16 == 0),
    3: frozenset(ord(c) for i, c in enumerate(_B64) if i % 4 == 0),
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _DuplicateMember(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateMember
    return obj


# Duplicate member names are refused in the header and the payload alike (RFC 7515 section 5.2
# lets a JWS parser refuse them): parsers keep the first or the last, so two components reading
# one token could see two different "scp" or "aud" claims.
_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
)


def b64url_decode(segment: bytes, what: str) -> bytes:
    """Strict base64url (RFC 7515 section 2): unpadded, alphabet only, canonical last character."""
    rem = len(segment) % 4
    if rem == 1:
        raise InvalidTokenError(f"the token {what} is not valid base64url")
    if rem and segment[-1] not in _CANONICAL_LAST[rem]:
        raise InvalidTokenError(f"the token {what} is not canonical base64url")
    try:
        return binascii.a2b_base64(
            segment.translate(_URLSAFE_TO_STD) + _PADDING[rem], strict_mode=True
        )
    except binascii.Error:
        raise InvalidTokenError(f"the token {what} is not valid base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value, end = _DECODER.raw_decode(text)
    except _DuplicateMember:
        raise InvalidTokenError(f"the token {what} names a member twice") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidTokenError(f"the token {what} is not valid JSON") from None
    if end != len(text):
        raise InvalidTokenError(f"the token {what} is not valid JSON")
    if type(value) is not dict:
        raise InvalidTokenError(f"the token {what} is not a JSON object")
    return value


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Validate a configured algorithm list: RSA signatures only, never ``none`` or HMAC."""
    if isinstance(algorithms, str):
        algorithms = (algorithms,)
    algs = tuple(algorithms)
    if not algs:
        raise ValueError("algorithms must name at least one algorithm, e.g. ('RS256',)")
    for alg in algs:
        if alg not in _ALGORITHMS:
            raise ValueError(
                f"algorithm {alg!r} is not supported; choose from {sorted(SUPPORTED_ALGORITHMS)}"
            )
    return algs


class JWS:
    """A parsed, not yet verified, compact JWS."""

    __slots__ = ("alg", "header", "kid", "payload_segment", "signature", "signing_input")

    def __init__(
        self,
        header: Mapping[str, Any],
        alg: str,
        kid: str,
        signing_input: bytes,
        payload_segment: bytes,
        signature: bytes,
    ) -> None:
        self.header = header
        self.alg = alg
        self.kid = kid
        self.signing_input = signing_input
        self.payload_segment = payload_segment
        self.signature = signature


def _check_header(header: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, str]:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise InvalidTokenError("the token header names no signing algorithm")
    if alg not in allowed:
        if alg.lower() == "none":
            raise InvalidTokenError("unsigned tokens (alg none) are not accepted")
        if alg.upper().startswith("HS"):
            raise InvalidTokenError(f"HMAC-signed tokens ({_safe(alg)}) are not accepted")
        raise InvalidTokenError(
            f"signing algorithm {_safe(alg)} is not accepted (accepted: {', '.join(allowed)})"
        )
    for name, reason in _FORBIDDEN_HEADERS.items():
        if name in header:
            raise InvalidTokenError(f"tokens with {reason} are not accepted")
    cty = header.get("cty")
    if cty is not None:
        if isinstance(cty, str) and cty.lower() in ("jwt", "application/jwt"):
            raise InvalidTokenError("nested tokens (cty JWT) are not accepted")
        raise InvalidTokenError("tokens with a cty header are not accepted")
    typ = header.get("typ")
    if typ is not None and not (isinstance(typ, str) and typ.lower() in _ACCEPTED_TYP):
        raise InvalidTokenError("the token typ header does not name a JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("the token header has no kid (key id)")
    if len(kid) > _MAX_KID_LENGTH:
        raise InvalidTokenError("the token kid is too long")
    return alg, kid


def _safe(value: str) -> str:
    """A short printable rendering of an attacker-chosen string for an error message."""
    return repr(value[:40])


# Header segment -> (header, alg, kid): Entra signs every token with one of a handful of headers,
# so each is decoded and checked once. Keyed per allowed-algorithm tuple; bounded by clearing.
_HEADER_CACHE: dict[tuple[bytes, tuple[str, ...]], tuple[Mapping[str, Any], str, str]] = {}
_HEADER_CACHE_SIZE: Final = 256


def _header(segment: bytes, allowed: tuple[str, ...]) -> tuple[Mapping[str, Any], str, str]:
    cache_key = (segment, allowed)
    hit = _HEADER_CACHE.get(cache_key)
    if hit is not None:
        return hit
    if len(segment) > 2048:
        raise InvalidTokenError("the token header is too large")
    header = _json_object(b64url_decode(segment, "header"), "header")
    alg, kid = _check_header(header, allowed)
    entry = (MappingProxyType(header), alg, kid)
    if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[cache_key] = entry
    return entry


def parse(token: object, algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS) -> JWS:
    """Split and check a compact JWS; the signature is not verified yet (see :func:`verify`)."""
    if type(token) is not str:
        if isinstance(token, str):
            token = str.__str__(token)  # an exact copy, whatever the subclass overrides
        else:
            raise InvalidTokenError("the token is not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidTokenError("the token contains non-ASCII characters") from None
    dots = raw.count(b".")
    if dots != 2:
        if dots == 4:
            raise InvalidTokenError("encrypted tokens (JWE) are not accepted")
        if not raw:
            raise InvalidTokenError("the token is empty")
        raise InvalidTokenError("the token is not a compact JWS (three dot-separated parts)")
    first = raw.index(b".")
    last = raw.rindex(b".")
    header_segment = raw[:first]
    if not header_segment:
        raise InvalidTokenError("the token header is empty")
    header, alg, kid = _header(header_segment, algorithms)
    payload_segment = raw[first + 1 : last]
    if not payload_segment:
        raise InvalidTokenError("the token payload is empty")
    signature = b64url_decode(raw[last + 1 :], "signature")
    if not signature:
        raise InvalidTokenError("the token signature is empty")
    return JWS(header, alg, kid, raw[:last], payload_segment, signature)


def verify(jws: JWS, key: RSAPublicKey) -> None:
    """Check the signature with ``key``; raise InvalidTokenError if it does not match."""
    pad, digest = _ALGORITHMS[jws.alg]
    try:
        key.verify(jws.signature, jws.signing_input, pad, digest)
    except InvalidSignature:
        raise InvalidTokenError("the token signature is invalid") from None
    except (ValueError, TypeError):  # e.g. a signature of the wrong length for the key
        raise InvalidTokenError("the token signature is invalid") from None


def decode_payload(jws: JWS) -> dict[str, Any]:
    """The payload as a JSON object; call after :func:`verify` so forged input is never parsed."""
    return _json_object(b64url_decode(jws.payload_segment, "payload"), "payload")
