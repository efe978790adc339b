"""A million distinct tokens through one AccessTokenValidator: its caches stay within bounds.

Tokens are minted on every other core while this process validates them, a chunk at a time, so
nothing but the validator holds them. By default one token in five is validly signed (each with a
new ``uti``, so a new signature) and the rest are distinct refusals: a forged payload (bad
signature), a ``kid`` never published (a new header each time) and undecodable text. ``--valid-every
1`` makes every token a valid one (slower: each needs an RSA signature). Every ``--sample`` tokens
it reads the RSS and the size of each cache; it exits non-zero if a cache ever passed its bound.
Usage: ``python bench/memory.py [--tokens 1000000] [--valid-every 5] [--json]``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mint_pool, rss_bytes
from cryptography.hazmat.primitives import serialization
from tests.support.oidc_stub import running_stub
from tests.support.tokens import API_CLIENT_ID, SigningKey, TokenFactory, b64url_json

from entra_ciam import AccessTokenValidator, AuthError, jose

CHUNK = 2000


def _mint(args: tuple[bytes, str, str, int]) -> list[str]:
    pem, kid, issuer, count = args
    private = serialization.load_pem_private_key(pem, password=None)
    factory = TokenFactory(issuer, key=SigningKey(kid=kid, private=private))  # type: ignore[arg-type]
    return [factory.mint() for _ in range(count)]


def _refusals(valid: str, n: int, serial: int) -> Iterator[str]:
    """``n`` distinct tokens that must all be refused, derived from one valid token."""
    head, body, signature = valid.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for i in range(n):
        kind = i % 3
        tag = f"{serial}-{i}"
        if kind == 0:  # forged: a payload the signature does not cover
            forged = b64url_json({**payload, "uti": tag})
            yield f"{head}.{forged}.{signature}"
        elif kind == 1:  # a key id never published, a new header each time
            unknown = b64url_json({"typ": "JWT", "alg": "RS256", "kid": f"unknown-{tag}"})
            yield f"{unknown}.{body}.{signature}"
        else:  # not a JWS at all
            yield f"garbage.{tag}.!!"


def run(tokens: int, valid_every: int, sample: int) -> dict[str, Any]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        validator.validate(factory.mint())  # discovery and keys now cached
        pem = factory.key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        valid_total = tokens // valid_every
        chunks = [min(CHUNK, valid_total - i) for i in range(0, valid_total, CHUNK)]
        workers = max(1, (os.cpu_count() or 2) - 1)
        seed = mint_pool(factory, 1)[0]
        bounds = {
            "validated-token cache": validator._cache_size,
            "header cache": jose._HEADER_CACHE_SIZE,
        }
        largest: Counter[str] = Counter()
        verdicts: Counter[str] = Counter()
        samples: list[tuple[int, int]] = []
        gc.collect()
        rss_start = rss_bytes()
        seen = 0
        started = time.perf_counter()

        def measure() -> None:
            for name, size in (
                ("validated-token cache", len(validator._cache)),
                ("header cache", len(jose._HEADER_CACHE)),
            ):
                largest[name] = max(largest[name], size)
            samples.append((seen, rss_bytes()))

        with ProcessPoolExecutor(workers) as pool:
            minted = pool.map(_mint, [(pem, factory.key.kid, factory.issuer, n) for n in chunks])
            for serial, chunk in enumerate(minted):
                refusals = _refusals(
                    chunk[0] if chunk else seed, len(chunk) * (valid_every - 1), serial
                )
                for token in chunk:
                    validator.validate(token)
                    verdicts["accepted"] += 1
                    seen += 1
                    for _ in range(valid_every - 1):
                        try:
                            validator.validate(next(refusals))
                        except AuthError as exc:
                            verdicts[f"refused {exc.status_code}"] += 1
                        else:
                            raise AssertionError("a token that must be refused was accepted")
                        seen += 1
                    if seen % sample < valid_every:
                        measure()
        measure()
        elapsed = time.perf_counter() - started
    gc.collect()
    rss_end = rss_bytes()
    peak = max(rss for _, rss in samples)
    over = {name: largest[name] for name, bound in bounds.items() if largest[name] > bound}
    return {
        "tokens": seen,
        "valid": verdicts["accepted"],
        "verdicts": dict(verdicts),
        "seconds": round(elapsed, 1),
        "cache_bounds": bounds,
        "cache_largest": dict(largest),
        "caches_within_bounds": not over,
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_mb": round((rss_end - rss_start) / 2**20, 1),
        "rss_samples_mb": [
            (n, round(rss / 2**20, 1)) for n, rss in samples[:: max(1, len(samples) // 10)]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--valid-every", type=int, default=5, help="1 in N tokens validly signed")
    parser.add_argument("--sample", type=int, default=50_000, help="tokens between RSS readings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.valid_every < 1:
        parser.error("--valid-every must be 1 or more")
    result = run(args.tokens, args.valid_every, args.sample)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['tokens']:,} distinct tokens ({result['valid']:,} valid) in "
            f"{result['seconds']} s: {result['verdicts']}"
        )
        for name, bound in result["cache_bounds"].items():
            print(f"  {name:<22} largest {result['cache_largest'][name]:>6,} (bound {bound:,})")
        print(
            f"  RSS {result['rss_start_mb']} MB -> peak {result['rss_peak_mb']} MB -> "
            f"{result['rss_end_mb']} MB (growth {result['rss_growth_mb']} MB)"
        )
    if not result["caches_within_bounds"]:
        sys.exit("a cache passed its bound")


if __name__ == "__main__":
    main()
