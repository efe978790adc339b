"""What metrics cost: validations per second with OpenTelemetry on (the SDK's MeterProvider and
TracerProvider, an in-memory metric reader attached) and off (the default no-op recorder).

Both modes run in the same process on the same Entra-shaped RS256 tokens, interleaved round by
round (off, on, on, off, ...) so machine noise hits them alike; the best round of each is
reported, and the ratio on/off must stay at or above 0.95 for fresh and for repeated tokens. At
the end the reader collects and the counts are checked against the validations made, so the
"on" rounds really were counted. Usage: ``python bench/telemetry.py [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from tests.support.oidc_stub import running_stub
from tests.support.tokens import API_CLIENT_ID, TokenFactory

from entra_ciam import AccessTokenValidator, telemetry
from entra_ciam.opentelemetry import OpenTelemetryRecorder

TARGET = 0.95


def counted(reader: InMemoryMetricReader) -> dict[str, int]:
    """The validations and cache hits the reader collects."""
    data = reader.get_metrics_data()
    out = {"valid": 0, "hits": 0}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    if metric.name == "entra_ciam.validations" and attributes == {
                        "outcome": "valid"
                    }:
                        out["valid"] = int(point.value)
                    if metric.name == "entra_ciam.validated_token_cache.hits":
                        out["hits"] = int(point.value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="distinct tokens per round")
    parser.add_argument("--repeat", type=int, default=100_000, help="calls per repeated round")
    parser.add_argument("--rounds", type=int, default=11, help="rounds of each mode")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    reader = InMemoryMetricReader()
    recorder = OpenTelemetryRecorder(MeterProvider(metric_readers=[reader]), TracerProvider())
    factory = TokenFactory()
    made = {"valid": 0, "hits": 0}  # what the "on" rounds did, to check against the reader
    with running_stub(factory) as stub:
        tokens = [factory.mint() for _ in range(args.tokens)]
        one = factory.mint()

        def validator() -> AccessTokenValidator:
            fresh = AccessTokenValidator(stub.authority, API_CLIENT_ID, cache_size=args.tokens * 2)
            fresh.warm_up()
            return fresh

        repeated = validator()
        repeated.validate(one)

        def fresh_round(on: bool) -> float:
            validate = validator().validate  # no token seen yet
            gc.collect()
            start = time.perf_counter()
            for token in tokens:
                validate(token)
            seconds = time.perf_counter() - start
            if on:
                made["valid"] += len(tokens)
            return len(tokens) / seconds

        def repeated_round(on: bool) -> float:
            validate = repeated.validate
            gc.collect()
            start = time.perf_counter()
            for _ in range(args.repeat):
                validate(one)
            seconds = time.perf_counter() - start
            if on:
                made["valid"] += args.repeat
                made["hits"] += args.repeat
            return args.repeat / seconds

        best: dict[str, float] = {}
        for index in range(args.rounds * 2):
            on = index % 4 in (1, 2)  # off, on, on, off, ...
            telemetry.install(recorder if on else None)
            try:
                for name, measure in (("fresh", fresh_round), ("repeated", repeated_round)):
                    key = f"{name} tokens, metrics {'on' if on else 'off'}"
                    best[key] = max(best.get(key, 0.0), measure(on))
            finally:
                telemetry.install(None)

    seen = counted(reader)
    if seen != made:
        raise SystemExit(f"the reader collected {seen}, the on rounds made {made}")
    ratios = {
        name: best[f"{name} tokens, metrics on"] / best[f"{name} tokens, metrics off"]
        for name in ("fresh", "repeated")
    }
    result: dict[str, Any] = {
        "per_second": best,
        "ratios": {f"{name} tokens, metrics on vs off": r for name, r in ratios.items()},
        "target": TARGET,
        "met": all(r >= TARGET for r in ratios.values()),
        "collected": seen,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in best.items():
        print(f"{name:<32} {value:>12,.0f}/s")
    for name, ratio in result["ratios"].items():
        print(f"{name:<32} {ratio:>12.3f}x  (target >= {TARGET})")
    print(f"collected by the reader: {seen}")


if __name__ == "__main__":
    main()
