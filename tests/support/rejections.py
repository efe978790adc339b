"""Every way a token or a request must be refused, shared by the WSGI and ASGI middleware tests.

Tokens that must fail because of one header or claim are signed with the tenant's real key, so
the only reason left for a refusal is the rule under test.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.tokens import (
    API_CLIENT_ID,
    SigningKey,
    TokenFactory,
    b64url,
    b64url_json,
)

if TYPE_CHECKING:
    from entra_ciam.validator import AccessTokenValidator

OTHER_GUID = "11111111-2222-4333-8444-555555555555"


@dataclass
class Tenant:
    """A running OIDC stub, the factory minting its tokens, and a validator trusting it."""

    factory: TokenFactory
    stub: OIDCStub
    validator: AccessTokenValidator

    def user_token(self, **claims: Any) -> str:
        return self.factory.mint(**claims)

    def app_token(self, roles: list[str] | None = None, **claims: Any) -> str:
        return self.factory.mint(self.factory.app_claims(roles, **claims))


@contextmanager
def running_tenant() -> Iterator[Tenant]:
    from entra_ciam.validator import AccessTokenValidator

    factory = TokenFactory()
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(authority=stub.authority, audience=API_CLIENT_ID)
        yield Tenant(factory, stub, validator)


# -- reading answers ----------------------------------------------------------------------------

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge(www_authenticate: str | None) -> dict[str, str]:
    """The parameters of a ``Bearer`` challenge; asserts the scheme."""
    assert www_authenticate is not None, "no WWW-Authenticate header"
    scheme, _, params = www_authenticate.partition(" ")
    assert scheme == "Bearer", www_authenticate
    return dict(_PARAM.findall(params))


# -- token catalogue ----------------------------------------------------------------------------


def signed(factory: TokenFactory, header: dict[str, Any], payload: bytes) -> str:
    """A compact JWS over arbitrary payload bytes, signed with the tenant's real key."""
    signing_input = f"{b64url_json(header)}.{b64url(payload)}".encode()
    return f"{signing_input.decode()}.{b64url(factory.key.sign(signing_input))}"


def _alg_none(f: TokenFactory) -> str:
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(f.claims())}."


def _hmac_with_public_key(f: TokenFactory) -> str:
    pem = f.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = f.header(alg="HS256")
    signing_input = f"{b64url_json(head)}.{b64url_json(f.claims())}".encode()
    return (
        f"{signing_input.decode()}.{b64url(hmac.new(pem, signing_input, hashlib.sha256).digest())}"
    )


def _with_header(**extra: Any) -> Callable[[TokenFactory], str]:
    def make(f: TokenFactory) -> str:
        return f.mint(header=f.header(**extra))

    return make


def _jwk_header(f: TokenFactory) -> str:
    attacker = SigningKey()
    return f.mint(header=f.header(jwk=attacker.jwk()))


def _missing_kid(f: TokenFactory) -> str:
    return f.mint(header={"typ": "JWT", "alg": "RS256"})


def _foreign_key_known_kid(f: TokenFactory) -> str:
    attacker = SigningKey(kid=f.key.kid)
    return f.mint(key=attacker)


def _tampered_payload(f: TokenFactory) -> str:
    head, _payload, sig = f.mint(scp="Todolist.Read").split(".")
    return f"{head}.{b64url_json(f.claims(scp='Todolist.ReadWrite Admin'))}.{sig}"


def _claims(**overrides: Any) -> Callable[[TokenFactory], str]:
    def make(f: TokenFactory) -> str:
        now = int(time.time())
        resolved = {k: (v(now) if callable(v) else v) for k, v in overrides.items()}
        return f.mint(**resolved)

    return make


def _no_grant(f: TokenFactory) -> str:
    return f.mint(f.claims(scp=None))


def _bad_base64_payload(f: TokenFactory) -> str:
    # Signed over the broken segment, so the signature holds and decoding is what fails.
    signing_input = f"{b64url_json(f.header())}.abcde".encode()  # no base64 has 5 characters
    return f"{signing_input.decode()}.{b64url(f.key.sign(signing_input))}"


def _bad_base64_header(f: TokenFactory) -> str:
    _head, payload, sig = f.mint().split(".")
    return f"eyJhbGciOiJSUzI1NiJ9x.{payload}.{sig}"


def _payload_not_json(f: TokenFactory) -> str:
    return signed(f, f.header(), b"{not json")


def _payload_not_object(f: TokenFactory) -> str:
    return signed(f, f.header(), b'["aud", "iss"]')


def _header_not_json(f: TokenFactory) -> str:
    _head, payload, sig = f.mint().split(".")
    return f"{b64url(b'{alg: RS256')}.{payload}.{sig}"


def _oversized(f: TokenFactory) -> str:
    return f.mint(padding="x" * (17 * 1024))


def _jwe(f: TokenFactory) -> str:
    head = b64url_json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": f.key.kid})
    return ".".join(
        [head, b64url(b"k" * 256), b64url(b"i" * 12), b64url(b"c" * 64), b64url(b"t" * 16)]
    )


def _nested(f: TokenFactory) -> str:
    inner = f.mint()
    return signed(f, f.header(cty="JWT"), inner.encode())


@dataclass(frozen=True)
class Rejection:
    id: str
    make: Callable[[TokenFactory], str]
    status: int = 401
    error: str = "invalid_token"
    # Words the error_description must contain (case-insensitive), to show the right rule fired.
    reason: tuple[str, ...] = field(default=())


TOKEN_REJECTIONS: list[Rejection] = [
    Rejection("alg-none", _alg_none, reason=("none",)),
    Rejection("alg-RS384-not-allowed", _with_header(alg="RS384"), reason=("algorithm",)),
    Rejection("alg-ES256-not-allowed", _with_header(alg="ES256"), reason=("algorithm",)),
    Rejection("hmac-with-public-key", _hmac_with_public_key, reason=("hmac",)),
    Rejection("jku-header", _with_header(jku="https://attacker.example/keys"), reason=("jku",)),
    Rejection("x5u-header", _with_header(x5u="https://attacker.example/cert.pem"), reason=("x5u",)),
    Rejection("jwk-header", _jwk_header, reason=("jwk",)),
    Rejection("crit-header", _with_header(crit=["exp"]), reason=("crit",)),
    Rejection("missing-kid", _missing_kid, reason=("kid",)),
    Rejection("unknown-kid", _with_header(kid="not-a-published-kid"), reason=("key",)),
    Rejection("signature-by-other-key", _foreign_key_known_kid, reason=("signature",)),
    Rejection("tampered-payload", _tampered_payload, reason=("signature",)),
    Rejection(
        "expired", _claims(exp=lambda n: n - 3600, iat=lambda n: n - 7200, nbf=lambda n: n - 7200)
    ),
    Rejection("nbf-in-future", _claims(nbf=lambda n: n + 3600)),
    Rejection("iat-in-future", _claims(iat=lambda n: n + 3600)),
    Rejection("wrong-iss", _claims(iss=f"https://{OTHER_GUID}.ciamlogin.com/{OTHER_GUID}/v2.0")),
    Rejection("wrong-aud", _claims(aud=OTHER_GUID)),
    Rejection("wrong-tid", _claims(tid=OTHER_GUID)),
    Rejection("ver-1.0", _claims(ver="1.0")),
    Rejection("no-ver", _claims(ver=None)),
    Rejection("neither-scp-nor-roles", _no_grant),
    Rejection("malformed-base64-payload", _bad_base64_payload, reason=("base64",)),
    Rejection("malformed-base64-header", _bad_base64_header, reason=("base64",)),
    Rejection("payload-not-json", _payload_not_json, reason=("json",)),
    Rejection("payload-not-object", _payload_not_object),
    Rejection("header-not-json", _header_not_json, reason=("json",)),
    Rejection("over-16-KiB", _oversized),
    Rejection("jwe", _jwe, reason=("encrypted",)),
    Rejection("nested-jwt", _nested, reason=("nested",)),
]


# -- request catalogue: what is refused before the validator is asked ---------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    # (headers, query) for a valid token; the token is substituted for "{token}".
    headers: list[tuple[str, str]]
    query: str = ""
    status: int = 401
    error: str | None = None


REQUEST_REJECTIONS: list[RequestCase] = [
    RequestCase("no-authorization", []),
    RequestCase("basic-scheme", [("Authorization", "Basic YWRhOnNlY3JldA==")]),
    RequestCase("bearer-without-token", [("Authorization", "Bearer")], error="invalid_request"),
    RequestCase(
        "two-tokens-in-one-header",
        [("Authorization", "Bearer {token} {token}")],
        error="invalid_request",
    ),
    RequestCase(
        "two-authorization-headers",
        [("Authorization", "Bearer {token}"), ("Authorization", "Bearer {token}")],
        error="invalid_request",
    ),
    RequestCase("token-in-query-only", [], query="access_token={token}", error="invalid_request"),
    RequestCase(
        "token-in-query-and-header",
        [("Authorization", "Bearer {token}")],
        query="access_token={token}",
        error="invalid_request",
    ),
    RequestCase(
        "token-with-illegal-characters",
        [("Authorization", "Bearer abc<script>")],
        error="invalid_token",
    ),
]


def fill(case: RequestCase, token: str) -> tuple[list[tuple[str, str]], str]:
    headers = [(k, v.replace("{token}", token)) for k, v in case.headers]
    return headers, case.query.replace("{token}", token)


def internal_detail(err: BaseException, pattern: str) -> str:
    """Check a 503 for unavailable metadata tells the client nothing of why (issue 16, point 5)
    and that its ``internal_detail``, for logs and local tools, matches ``pattern``."""
    from entra_ciam.errors import MetadataUnavailableError
    from entra_ciam.metadata import UNAVAILABLE

    assert isinstance(err, MetadataUnavailableError), repr(err)
    assert err.description == str(err) == UNAVAILABLE
    assert err.to_dict() == {"error": "temporarily_unavailable", "error_description": UNAVAILABLE}
    assert err.www_authenticate is None
    assert err.internal_detail is not None
    assert re.search(pattern, err.internal_detail), err.internal_detail
    return err.internal_detail
