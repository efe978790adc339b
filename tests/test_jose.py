"""Compact JWS parsing and signature checks (entra_ciam.jose), without any network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from entra_ciam import jose
from entra_ciam.errors import InvalidTokenError
from tests.support.tokens import SigningKey, TokenFactory, b64url, b64url_json

KEY = SigningKey()
FACTORY = TokenFactory(key=KEY)


def signed(header: dict[str, object], payload: bytes | dict[str, object]) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url_json(header)}.{b64url(body)}".encode()
    return f"{signing_input.decode()}.{b64url(KEY.sign(signing_input))}"


def rejected(token: object, match: str, algorithms: tuple[str, ...] = ("RS256",)) -> str:
    with pytest.raises(InvalidTokenError, match=match) as info:
        jose.parse(token, algorithms)
    assert info.value.status_code == 401
    assert info.value.error == "invalid_token"
    return info.value.description


def test_parse_verify_decode_round_trip() -> None:
    token = FACTORY.mint()
    jws = jose.parse(token)
    assert jws.alg == "RS256"
    assert jws.kid == KEY.kid
    assert jws.header["typ"] == "JWT"
    jose.verify(jws, KEY.private.public_key())
    payload = jose.decode_payload(jws)
    assert payload["aud"] == FACTORY.audience
    assert payload["ver"] == "2.0"


def test_header_is_read_only() -> None:
    jws = jose.parse(FACTORY.mint())
    with pytest.raises(TypeError):
        jws.header["alg"] = "none"  # type: ignore[index]


@pytest.mark.parametrize("alg", ["PS256", "PS384", "PS512", "RS384", "RS512"])
def test_other_rsa_algorithms_when_configured(alg: str) -> None:
    body = f"{b64url_json({'alg': alg, 'kid': KEY.kid})}.{b64url_json({'a': 1})}".encode()
    pad: padding.AsymmetricPadding
    digest: hashes.HashAlgorithm = {"256": hashes.SHA256(), "384": hashes.SHA384()}.get(
        alg[2:], hashes.SHA512()
    )
    if alg.startswith("PS"):
        pad = padding.PSS(padding.MGF1(digest), padding.PSS.DIGEST_LENGTH)
    else:
        pad = padding.PKCS1v15()
    token = f"{body.decode()}.{b64url(KEY.private.sign(body, pad, digest))}"
    rejected(token, "not accepted")  # RS256 only by default
    jws = jose.parse(token, (alg,))
    jose.verify(jws, KEY.private.public_key())
    # Each algorithm is its padding and its hash: the signature of one never passes as another.
    for other in sorted(jose.SUPPORTED_ALGORITHMS - {alg}):
        forged = jose.parse(
            token.replace(
                b64url_json({"alg": alg, "kid": KEY.kid}),
                b64url_json({"alg": other, "kid": KEY.kid}),
            ),
            (other,),
        )
        with pytest.raises(InvalidTokenError, match="signature is invalid"):
            jose.verify(forged, KEY.private.public_key())


def test_wrong_key_fails_verification() -> None:
    jws = jose.parse(FACTORY.mint())
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        jose.verify(jws, SigningKey().private.public_key())


def test_a_key_of_another_type_fails_verification() -> None:
    """verify() answers InvalidTokenError whatever the key object makes of the call."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    jws = jose.parse(FACTORY.mint())
    for key in (
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        ed25519.Ed25519PrivateKey.generate().public_key(),
    ):
        with pytest.raises(InvalidTokenError, match="signature is invalid"):
            jose.verify(jws, key)  # type: ignore[arg-type]


def test_signature_of_wrong_length_fails_verification() -> None:
    head, body, _sig = FACTORY.mint().split(".")
    jws = jose.parse(f"{head}.{body}.{b64url(b'short')}")
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        jose.verify(jws, KEY.private.public_key())


def test_alg_none() -> None:
    token = f"{b64url_json({'alg': 'none', 'kid': KEY.kid})}.{b64url_json({'a': 1})}.x"
    rejected(token, r"alg none")
    rejected(token.replace(".x", "."), r"alg none|signature is empty")


def test_alg_none_in_other_cases() -> None:
    for alg in ("None", "NONE", "nOnE"):
        rejected(f"{b64url_json({'alg': alg, 'kid': 'k'})}.{b64url_json({})}.", "alg none")


@pytest.mark.parametrize("alg", [None, 256, ["RS256"], {"RS256": 1}])
def test_alg_missing_or_not_a_string(alg: object) -> None:
    header = {"kid": KEY.kid} if alg is None else {"alg": alg, "kid": KEY.kid}
    rejected(signed(header, {"a": 1}), "names no signing algorithm")


def test_attacker_chosen_values_are_quoted_short() -> None:
    alg = "X" * 100
    assert rejected(signed({"alg": alg, "kid": KEY.kid}, {"a": 1}), "not accepted") == (
        f"signing algorithm {'X' * 40!r} is not accepted (accepted: RS256)"
    )
    hs = "HS" + "9" * 100
    assert rejected(signed({"alg": hs, "kid": KEY.kid}, {"a": 1}), "HMAC") == (
        f"HMAC-signed tokens ({hs[:40]!r}) are not accepted"
    )


def test_alg_not_allowed() -> None:
    rejected(FACTORY.mint(header={"alg": "ES256", "kid": KEY.kid}), r"'ES256' is not accepted")


def test_hmac_signed_with_the_public_key() -> None:
    pem = KEY.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': KEY.kid})}.{b64url_json({'a': 1})}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    rejected(f"{signing_input}.{b64url(mac)}", "HMAC")


def test_hmac_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="not supported"):
        jose.check_algorithms(["HS256"])
    with pytest.raises(ValueError, match="not supported"):
        jose.check_algorithms(["none"])
    with pytest.raises(ValueError, match="at least one"):
        jose.check_algorithms([])
    assert jose.check_algorithms("RS256") == ("RS256",)


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "crit", "b64", "enc", "zip"])
def test_forbidden_header(name: str) -> None:
    header = {"alg": "RS256", "kid": KEY.kid, name: "https://attacker.example/keys"}
    rejected(signed(header, {"a": 1}), f"a {name} header|an {name} header")


def test_the_kid_length_limit_is_exact() -> None:
    jose.parse(signed({"alg": "RS256", "kid": "k" * 256}, {"a": 1}))
    rejected(signed({"alg": "RS256", "kid": "k" * 257}, {"a": 1}), "kid is too long")


def test_the_header_size_limit_is_exact() -> None:
    def header(size: int) -> str:  # a header segment of exactly this many bytes of JSON
        frame = '{"alg":"RS256","kid":"k","x":""}'
        return b64url(frame.replace('""', '"' + "p" * (size - len(frame)) + '"').encode())

    payload = f"{b64url_json({'a': 1})}.{b64url(b'sig')}"
    largest = header(1536)  # 2048 characters
    assert len(largest) == 2048
    jose.parse(f"{largest}.{payload}")
    rejected(f"{header(1537)}.{payload}", "header is too large")  # 2050 characters
    rejected(f"{largest}A.{payload}", "header is too large")  # 2049: not even base64url


def test_the_header_cache_is_bounded() -> None:
    """Header segments are attacker-chosen: the cache of checked headers holds at most 256."""
    jose._HEADER_CACHE.clear()
    sizes = []
    for n in range(600):
        jose.parse(f"{b64url_json({'alg': 'RS256', 'kid': f'k{n}'})}.e30.{b64url(b'sig')}")
        sizes.append(len(jose._HEADER_CACHE))
    assert max(sizes) == 256
    # A cached header is answered as it was checked the first time, per algorithm list.
    token = f"{b64url_json({'alg': 'PS256', 'kid': 'k'})}.e30.{b64url(b'sig')}"
    assert jose.parse(token, ("PS256",)).alg == "PS256"
    rejected(token, "'PS256' is not accepted")


def test_missing_kid() -> None:
    rejected(signed({"alg": "RS256", "typ": "JWT"}, {"a": 1}), "no kid")
    rejected(signed({"alg": "RS256", "kid": ""}, {"a": 1}), "no kid")
    rejected(signed({"alg": "RS256", "kid": 7}, {"a": 1}), "no kid")


def test_nested_jwt() -> None:
    inner = FACTORY.mint()
    for cty in ("JWT", "jwt", "application/jwt", "Application/JWT"):
        rejected(signed({"alg": "RS256", "kid": KEY.kid, "cty": cty}, inner.encode()), "nested")
    for cty in ("text/plain", 7, ["JWT"], ""):
        rejected(
            signed({"alg": "RS256", "kid": KEY.kid, "cty": cty}, {"a": 1}),
            "^tokens with a cty header are not accepted$",
        )


def test_typ_other_than_jwt() -> None:
    rejected(signed({"alg": "RS256", "kid": KEY.kid, "typ": "dpop+jwt"}, {"a": 1}), "typ")
    rejected(signed({"alg": "RS256", "kid": KEY.kid, "typ": ["JWT"]}, {"a": 1}), "typ")
    rejected(signed({"alg": "RS256", "kid": KEY.kid, "typ": ""}, {"a": 1}), "typ")
    for typ in ("JWT", "jwt", "at+jwt", "AT+JWT", "application/jwt", "application/at+jwt"):
        jose.parse(signed({"alg": "RS256", "kid": KEY.kid, "typ": typ}, {"a": 1}))
    jose.parse(signed({"alg": "RS256", "kid": KEY.kid}, {"a": 1}))
    jose.parse(signed({"alg": "RS256", "kid": KEY.kid, "typ": None}, {"a": 1}))


def test_jwe_five_parts() -> None:
    header = b64url_json({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": KEY.kid})
    rejected(f"{header}.a.b.c.d", "encrypted tokens")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "the token is empty"),
        ("abc", "not a compact JWS"),
        ("a.b", "not a compact JWS"),
        ("a.b.c.d", "not a compact JWS"),
        ("....", "encrypted tokens"),
        (f".{b64url_json({'a': 1})}.c2ln", "the token header is empty"),
        (f"{b64url_json({'alg': 'RS256', 'kid': 'k'})}..c2ln", "the token payload is empty"),
        (f"{b64url_json({'alg': 'RS256', 'kid': 'k'})}.e30.", "the token signature is empty"),
    ],
)
def test_not_three_nonempty_parts(token: str, reason: str) -> None:
    rejected(token, reason)


def test_too_long() -> None:
    token = FACTORY.mint(padding="x" * 17000)
    rejected(token, "longer than 16384")


def test_the_length_limit_is_exact() -> None:
    head = b64url_json({"alg": "RS256", "kid": KEY.kid})
    signature = b64url(b"s" * 256)
    room = jose.MAX_TOKEN_LENGTH - len(head) - len(signature) - 2
    longest = f"{head}.{'A' * room}.{signature}"
    assert len(longest) == jose.MAX_TOKEN_LENGTH == 16384
    assert jose.parse(longest).signature == b"s" * 256  # parsed; verification would refuse it
    rejected(f"{head}.{'A' * (room + 1)}.{signature}", "longer than 16384 characters")


def test_not_a_string() -> None:
    rejected(b"a.b.c", "not a string")
    rejected(None, "not a string")
    rejected(12, "not a string")


def test_non_ascii() -> None:
    rejected(FACTORY.mint() + "\u00e9", "non-ASCII")
    rejected("\ud800.a.b", "non-ASCII")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s + "=",  # padding
        lambda s: s[:5] + "+" + s[6:],  # standard alphabet
        lambda s: s[:5] + "/" + s[6:],
        lambda s: s[:5] + " " + s[6:],  # whitespace
        lambda s: s[:5] + "\n" + s[6:],
        lambda s: s + "A" * ((1 - len(s)) % 4),  # length 1 mod 4 is never valid
        lambda s: s[:5] + "!" + s[6:],
        # Four characters outside the alphabet: a lenient decoder skips them and decodes the
        # rest to the very same bytes, so only the strict decoder refuses the segment.
        lambda s: s[:4] + "++//" + s[4:],
        lambda s: s[:4] + "====" + s[4:],
    ],
)
def test_malformed_base64(mutate: object) -> None:
    head, body, sig = FACTORY.mint().split(".")
    assert callable(mutate)
    for token in (f"{mutate(head)}.{body}.{sig}", f"{head}.{body}.{mutate(sig)}"):
        with pytest.raises(InvalidTokenError, match=r"base64url"):
            jose.parse(token)
    jws = jose.parse(f"{head}.{mutate(body)}.{sig}")  # the payload is decoded after verify
    with pytest.raises(InvalidTokenError, match="base64url"):
        jose.decode_payload(jws)


def test_non_canonical_base64_is_rejected() -> None:
    # "QR" decodes to the same byte as "QQ" (its padding bits are set): a second spelling.
    assert base64.urlsafe_b64decode("QR==") == base64.urlsafe_b64decode("QQ==")
    with pytest.raises(InvalidTokenError, match="canonical"):
        jose.b64url_decode(b"QR", "signature")
    assert jose.b64url_decode(b"QQ", "signature") == b"A"
    head, body, sig = FACTORY.mint().split(".")
    last = sig[-1]
    index = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(last)
    if len(sig) % 4:
        twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index + 1]
        with pytest.raises(InvalidTokenError, match="canonical"):
            jose.parse(f"{head}.{body}.{sig[:-1]}{twin}")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"string"', b"null", b"\xff\xfe", b'{"a": NaN}', b'{"a":1} x'],
)
def test_malformed_json_header(raw: bytes) -> None:
    rejected(f"{b64url(raw)}.{b64url_json({'a': 1})}.{b64url(b'sig')}", "JSON")


def test_duplicate_header_member() -> None:
    raw = b'{"alg":"none","alg":"RS256","kid":"k"}'
    rejected(
        f"{b64url(raw)}.{b64url_json({'a': 1})}.{b64url(b'sig')}", "header names a member twice"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"scp":"Todolist.Read","scp":"Todolist.ReadWrite"}',  # which one would a reader take?
        b'{"aud":"other","aud":"mine"}',
        b'{"a":{"x":1,"x":2}}',  # nested objects too
    ],
)
def test_duplicate_payload_member(raw: bytes) -> None:
    """Issue 16, point 6: refused in the payload as in the header, even when correctly signed."""
    jws = jose.parse(signed({"alg": "RS256", "kid": KEY.kid}, raw))
    jose.verify(jws, KEY.private.public_key())
    with pytest.raises(InvalidTokenError, match="payload names a member twice"):
        jose.decode_payload(jws)


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b"\xff", b'{"exp": Infinity}', b"[" * 5000])
def test_malformed_json_payload(raw: bytes) -> None:
    jws = jose.parse(signed({"alg": "RS256", "kid": KEY.kid}, raw))
    jose.verify(jws, KEY.private.public_key())  # correctly signed, still refused
    with pytest.raises(InvalidTokenError, match="JSON"):
        jose.decode_payload(jws)


def test_error_messages_do_not_echo_the_token() -> None:
    token = FACTORY.mint(header={"alg": "HS256", "kid": "k" * 300})
    message = rejected(token, "HMAC")
    assert token not in message
    assert token.split(".")[1] not in message
