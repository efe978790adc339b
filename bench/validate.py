"""Validations per second: entra-ciam's AccessTokenValidator next to PyJWT, Authlib and joserfc.

All four run in the same process on the same Entra-shaped RS256 tokens, interleaved round by
round so that machine noise hits them alike; the best round of each is reported. Peers get their
key pre-loaded and check iss, aud and the time claims. "fresh" means every token is seen once by
the validator (its signing keys are cached, its validated-token cache is cold); "repeated" means
one token validated again and again. Usage: ``python bench/validate.py [--tokens N] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import RSAKey
from tests.support.oidc_stub import running_stub
from tests.support.tokens import API_CLIENT_ID, TokenFactory

from entra_ciam import AccessTokenValidator
from entra_ciam.jose import b64url_decode


def rate(run: Callable[[], int]) -> Callable[[], float]:
    """A measurement: calls per second of one pass of ``run``, which returns its call count."""

    def measure() -> float:
        gc.collect()
        start = time.perf_counter()
        count = run()
        return count / (time.perf_counter() - start)

    return measure


def peer_decoders(factory: TokenFactory) -> dict[str, Callable[[str], Any]]:
    """PyJWT, Authlib and joserfc, each with the key pre-loaded, checking iss, aud and times."""
    with warnings.catch_warnings():
        # authlib.jose announces its own deprecation in favour of joserfc when imported.
        warnings.simplefilter("ignore")
        from authlib.jose import JsonWebKey
        from authlib.jose import jwt as authlib_jwt

    public = factory.key.private.public_key()
    jwk = factory.key.jwk()
    issuer, audience = factory.issuer, API_CLIENT_ID

    def pyjwt_decode(token: str) -> Any:
        return pyjwt.decode(token, public, algorithms=["RS256"], audience=audience, issuer=issuer)

    authlib_key = JsonWebKey.import_key(jwk)
    authlib_options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
    }

    def authlib_decode(token: str) -> Any:
        claims = authlib_jwt.decode(token, authlib_key, claims_options=authlib_options)
        claims.validate(leeway=60)
        return claims

    joserfc_key = RSAKey.import_key(jwk)
    registry = joserfc_jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
    )

    def joserfc_decode(token: str) -> Any:
        decoded = joserfc_jwt.decode(token, joserfc_key, algorithms=["RS256"])
        registry.validate(decoded.claims)
        return decoded.claims

    return {"PyJWT": pyjwt_decode, "Authlib": authlib_decode, "joserfc": joserfc_decode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="distinct tokens per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=100_000, help="calls per repeated round")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    factory = TokenFactory()
    with running_stub(factory) as stub:
        tokens = [factory.mint() for _ in range(args.tokens)]
        one = tokens[0]
        public = factory.key.private.public_key()
        audience = API_CLIENT_ID

        def warm_validator() -> AccessTokenValidator:
            validator = AccessTokenValidator(stub.authority, audience, cache_size=args.tokens * 2)
            validator.validate(factory.mint())  # discovery and keys now cached
            return validator

        # -- ours
        def ours_fresh() -> float:
            validate = warm_validator().validate  # a new validator: no token seen yet
            gc.collect()
            start = time.perf_counter()
            for token in tokens:
                validate(token)
            return len(tokens) / (time.perf_counter() - start)

        repeated = warm_validator()
        repeated.validate(one)

        def ours_repeated() -> int:
            validate = repeated.validate
            for _ in range(args.repeat):
                validate(one)
            return args.repeat

        # -- peers
        peers = peer_decoders(factory)
        pyjwt_decode = peers["PyJWT"]
        authlib_decode = peers["Authlib"]
        joserfc_decode = peers["joserfc"]

        signatures = [
            (t[: t.rindex(".")].encode(), b64url_decode(t[t.rindex(".") + 1 :].encode(), "s"))
            for t in tokens
        ]
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

        def verify_only() -> int:
            for signing_input, signature in signatures:
                public.verify(signature, signing_input, pkcs1, sha256)
            return len(signatures)

        def over_tokens(decode: Callable[[str], Any]) -> Callable[[], int]:
            def run() -> int:
                for token in tokens:
                    decode(token)
                return len(tokens)

            return run

        def same_token(decode: Callable[[str], Any], calls: int) -> Callable[[], int]:
            def run() -> int:
                for _ in range(calls):
                    decode(one)
                return calls

            return run

        for check in (pyjwt_decode, authlib_decode, joserfc_decode, repeated.validate):
            check(one)  # every contender accepts the token before it is timed

        peer_repeat = max(1, args.tokens)
        contenders: dict[str, Callable[[], float]] = {
            "entra-ciam validate (fresh tokens)": ours_fresh,
            "entra-ciam validate (repeated token)": rate(ours_repeated),
            "PyJWT jwt.decode (fresh tokens)": rate(over_tokens(pyjwt_decode)),
            "PyJWT jwt.decode (repeated token)": rate(same_token(pyjwt_decode, peer_repeat)),
            "Authlib jwt.decode+validate": rate(over_tokens(authlib_decode)),
            "joserfc jwt.decode+validate": rate(over_tokens(joserfc_decode)),
            "cryptography verify only": rate(verify_only),
        }
        best: dict[str, float] = dict.fromkeys(contenders, 0.0)
        started = time.perf_counter()
        for _ in range(args.rounds):
            for name, measure in contenders.items():
                best[name] = max(best[name], measure())
        elapsed = time.perf_counter() - started

    pyjwt_fresh = best["PyJWT jwt.decode (fresh tokens)"]
    pyjwt_same = best["PyJWT jwt.decode (repeated token)"]
    ratios = {
        "fresh vs PyJWT": best["entra-ciam validate (fresh tokens)"] / pyjwt_fresh,
        "repeated vs PyJWT": best["entra-ciam validate (repeated token)"] / pyjwt_same,
        "fresh vs Authlib": best["entra-ciam validate (fresh tokens)"]
        / best["Authlib jwt.decode+validate"],
        "fresh vs joserfc": best["entra-ciam validate (fresh tokens)"]
        / best["joserfc jwt.decode+validate"],
        "cryptography verify vs PyJWT": best["cryptography verify only"] / pyjwt_fresh,
    }
    if args.json:
        print(json.dumps({"per_second": best, "ratios": ratios, "seconds": elapsed}, indent=2))
        return
    print(f"{args.tokens} RS256 tokens, best of {args.rounds} rounds ({elapsed:.1f} s)")
    for name, value in best.items():
        print(f"  {name:<40} {value:>12,.0f} /s  {1e6 / value:8.2f} us")
    print("ratios (higher is faster for entra-ciam):")
    for name, value in ratios.items():
        print(f"  {name:<40} {value:>8.2f}x")


if __name__ == "__main__":
    main()
