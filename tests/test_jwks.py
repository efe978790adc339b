"""JWKS parsing (entra_ciam.jwks): which keys are kept, and which documents are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_ciam.jwks import MAX_JWKS_BYTES, parse_jwks
from tests.support.tokens import SigningKey, _int_b64

KEY = SigningKey(kid="key-1")
OTHER = SigningKey(kid="key-2")


def rsa_jwk(bits: int = 2048, e: int = 65537, **extra: Any) -> dict[str, Any]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    n = numbers.public_numbers().n
    return {"kty": "RSA", "kid": f"k{bits}", "n": _int_b64(n), "e": _int_b64(e), **extra}


def test_entra_shaped_document() -> None:
    entra_key = {
        **KEY.jwk(),
        "x5t": "abc",
        "x5c": ["MIIC..."],
        "cloud_instance_name": "microsoftonline.com",
        "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    }
    keys = parse_jwks(json.dumps({"keys": [entra_key, OTHER.jwk()]}).encode())
    assert set(keys) == {"key-1", "key-2"}
    assert keys["key-1"].public_numbers() == KEY.private.public_key().public_numbers()


def test_accepts_str_and_dict() -> None:
    doc = {"keys": [KEY.jwk()]}
    assert set(parse_jwks(json.dumps(doc))) == {"key-1"}
    assert set(parse_jwks(doc)) == {"key-1"}


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**KEY.jwk(), "kid": "enc", "use": "enc"},
        {**KEY.jwk(), "kid": "hs", "alg": "HS256"},
        {**KEY.jwk(), "kid": "ops", "key_ops": ["encrypt"]},
        {**KEY.jwk(), "kid": "priv", "d": "AAAA"},
        {**{k: v for k, v in KEY.jwk().items() if k != "kid"}},
        {**KEY.jwk(), "kid": ""},
        {**KEY.jwk(), "kid": "bad-n", "n": "not base64!"},
        {**KEY.jwk(), "kid": "padded-n", "n": KEY.jwk()["n"] + "=="},
        {**KEY.jwk(), "kid": "no-e", "e": None},
        {**KEY.jwk(), "kid": "alg-list", "alg": ["RS256"]},
        {**KEY.jwk(), "kid": "alg-object", "alg": {"name": "RS256"}},
        {**KEY.jwk(), "kid": "alg-number", "alg": 256},
        {**KEY.jwk(), "kid": "use-list", "use": ["sig"]},
        {**KEY.jwk(), "kid": "ops-objects", "key_ops": [{"verify": True}]},
        "not an object",
    ],
    ids=lambda j: str(j.get("kid", j.get("kty"))) if isinstance(j, dict) else "str",
)
def test_unusable_keys_are_skipped(jwk: Any) -> None:
    keys = parse_jwks({"keys": [jwk, OTHER.jwk()]})
    assert set(keys) == {"key-2"}


def test_key_with_allowed_alg_is_kept() -> None:
    keys = parse_jwks({"keys": [{**KEY.jwk(), "alg": "RS256", "key_ops": ["verify"]}]})
    assert set(keys) == {"key-1"}
    keys = parse_jwks({"keys": [{**KEY.jwk(), "alg": "PS256"}, OTHER.jwk()]}, ("RS256",))
    assert set(keys) == {"key-2"}


def test_short_modulus_is_skipped() -> None:
    weak = rsa_jwk(1024)
    assert parse_jwks({"keys": [weak, OTHER.jwk()]}).keys() == {"key-2"}
    assert parse_jwks({"keys": [rsa_jwk(3072)]}).keys() == {"k3072"}


@pytest.mark.parametrize("e", [1, 2, 65536, 2**40 + 1])
def test_bad_exponent_is_skipped(e: int) -> None:
    assert parse_jwks({"keys": [rsa_jwk(e=e), OTHER.jwk()]}).keys() == {"key-2"}


def test_two_different_keys_under_one_kid_are_both_dropped() -> None:
    twin = {**OTHER.jwk(), "kid": "key-1"}
    assert parse_jwks({"keys": [KEY.jwk(), twin, OTHER.jwk()]}).keys() == {"key-2"}
    # the same key listed twice is harmless
    assert parse_jwks({"keys": [KEY.jwk(), KEY.jwk()]}).keys() == {"key-1"}


@pytest.mark.parametrize(
    "document",
    [
        b"<html>not json</html>",
        b"",
        b"[]",
        b'"keys"',
        b"{}",
        b'{"keys": {}}',
        b'{"keys": []}',
        b'{"keys": [{"kty": "EC"}]}',
        b"[" * 100_000,
    ],
)
def test_bad_documents_raise_value_error(document: bytes) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document)


def test_size_bound() -> None:
    big = json.dumps({"keys": [KEY.jwk()], "pad": "x" * MAX_JWKS_BYTES}).encode()
    with pytest.raises(ValueError, match="larger than"):
        parse_jwks(big)
    with pytest.raises(ValueError, match="larger than"):
        parse_jwks(json.dumps({"keys": [KEY.jwk()]}), max_bytes=10)


def test_too_many_keys() -> None:
    with pytest.raises(ValueError, match="more than"):
        parse_jwks({"keys": [KEY.jwk()] * 101})


def test_only_ec_keys_is_no_usable_key() -> None:
    with pytest.raises(ValueError, match="no usable"):
        parse_jwks({"keys": [{"kty": "EC", "kid": "e", "crv": "P-256"}]})
