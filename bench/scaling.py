"""Validations/s and HTTP requests/s against concurrency (1, 2, 8, 32, 128), ours next to peers.

Validations: ``N`` threads share one validator (or one peer decoder) and a pool of distinct tokens
larger than the validated-token cache, walked in turn, so every call is a fresh token with its
signature checked. HTTP: the servers of bench/http_load.py under ``wrk -c N`` (fresh tokens for the
authenticated ones), and the signed-in Flask page of bench/signin_load.py (no auth, ours with the
memory and Redis stores, identity, Authlib). Writes a PNG plot (matplotlib) and prints the table;
without wrk only the validations are measured and the HTTP panels say so.
Usage: ``python bench/scaling.py [--plot docs/performance-scaling.png] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, mint_pool
from bench.http_load import Config, bench
from bench.loadgen import WRK_MISSING, find_wrk, run_wrk
from bench.signin_load import (
    FLASK_AUTHLIB,
    FLASK_IDENTITY,
    FLASK_MEMORY,
    FLASK_PLAIN,
    FLASK_REDIS,
    PAGE,
    SignedInPages,
    redis_missing,
)
from bench.validate import peer_decoders
from tests.support.oidc_stub import running_stub
from tests.support.tokens import API_CLIENT_ID, TokenFactory

from entra_ciam import AccessTokenValidator

LEVELS = (1, 2, 8, 32, 128)
POOL = 8192  # twice the validator's default cache: a walk in turn never hits it
HTTP_CONFIGS = (
    Config("no auth (Starlette)", "plain", "none"),
    Config("entra-ciam, repeated token", "ours", "repeated"),
    Config("entra-ciam, fresh tokens", "ours", "fresh"),
    Config("PyJWT (fastapi-azure-auth style), fresh", "pyjwt", "fresh"),
    Config("fastapi-azure-auth on FastAPI, fresh", "faa", "fresh"),
)
SIGNED_IN_PAGES = (FLASK_PLAIN, FLASK_MEMORY, FLASK_REDIS, FLASK_IDENTITY, FLASK_AUTHLIB)


def threaded_rate(decode: Callable[[str], Any], tokens: Sequence[str], threads: int) -> float:
    """Calls per second of ``decode`` over ``tokens`` (each once) split across ``threads``."""
    counter = itertools.count()
    start_line = threading.Barrier(threads + 1)

    def work() -> None:
        start_line.wait()
        while (i := next(counter)) < len(tokens):  # itertools.count is atomic under the GIL
            decode(tokens[i])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    gc.collect()
    start_line.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return len(tokens) / (time.perf_counter() - began)


def validations(levels: Sequence[int], rounds: int) -> dict[str, dict[int, float]]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        tokens = mint_pool(factory, POOL)
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        validator.validate(factory.mint())  # keys cached; the pool is larger than the cache
        decoders = {"entra-ciam": validator.validate, **peer_decoders(factory)}
        for decode in decoders.values():
            decode(tokens[0])
        best: dict[str, dict[int, float]] = {name: dict.fromkeys(levels, 0.0) for name in decoders}
        for _ in range(rounds):
            for level in levels:
                for name, decode in decoders.items():
                    rate = threaded_rate(decode, tokens, level)
                    best[name][level] = max(best[name][level], rate)
    return best


def http(levels: Sequence[int], seconds: float) -> dict[str, dict[int, float]]:
    results: dict[str, dict[int, float]] = {c.name: {} for c in HTTP_CONFIGS}
    with bench() as b:
        for app in dict.fromkeys(c.app for c in HTTP_CONFIGS):
            with b.server(app) as url:
                for config in (c for c in HTTP_CONFIGS if c.app == app):
                    b.load(url, config.tokens, 8, min(1.0, seconds))  # warm-up
                    for level in levels:
                        run = b.load(url, config.tokens, level, seconds)
                        if run.errors:
                            raise RuntimeError(f"{config.name} at {level}: {run.errors} errors")
                        results[config.name][level] = run.per_second
    return results


def signed_in(levels: Sequence[int], seconds: float) -> dict[str, dict[int, float]]:
    """Requests/s of the signed-in Flask page at each level (a user really signed in)."""
    wrk = find_wrk()
    assert wrk is not None
    pages = [p for p in SIGNED_IN_PAGES if p.store != "redis" or redis_missing() is None]
    results: dict[str, dict[int, float]] = {p.name: {} for p in pages}
    with (
        tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir,
        SignedInPages(pages, Path(workdir)).running() as served,
    ):
        for name, item in served.items():
            run_wrk(wrk, item.url + PAGE, connections=8, seconds=1, headers=item.headers)
            for level in levels:
                run = run_wrk(
                    wrk, item.url + PAGE, connections=level, seconds=seconds, headers=item.headers
                )
                if run.errors:
                    raise RuntimeError(f"{name} at {level}: {run.errors} errors")
                results[name][level] = run.per_second
            item.check()
    return results


def plot(
    path: Path,
    valid: dict[str, dict[int, float]],
    served: dict[str, dict[int, float]],
    pages: dict[str, dict[int, float]],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.8), dpi=110)
    for axes, data, title, unit in (
        (left, valid, "Token validations (fresh tokens, threads)", "validations/s"),
        (middle, served, "GET /api/todolist on uvicorn (wrk connections)", "requests/s"),
        (right, pages, "Signed-in Flask page on gunicorn (wrk connections)", "requests/s"),
    ):
        if not data:
            axes.text(0.5, 0.5, "not measured: wrk is missing", ha="center", va="center")
            axes.set_title(title)
            continue
        for name, series in data.items():
            levels = sorted(series)
            ours = "entra-ciam" in name
            axes.plot(
                levels,
                [series[level] for level in levels],
                marker="o",
                linewidth=2.5 if ours else 1.5,
                label=name,
            )
        axes.set_xscale("log", base=2)
        axes.set_xticks(list(LEVELS), [str(level) for level in LEVELS])
        axes.set_xlabel("concurrency")
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("entra-ciam next to its peers, one run on a 2-core machine")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "performance-scaling.png")
    parser.add_argument("--seconds", type=float, default=2.0, help="per HTTP level")
    parser.add_argument("--rounds", type=int, default=2, help="validation rounds, best kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    valid = validations(LEVELS, args.rounds)
    missing = None
    if find_wrk() is None:
        missing, served, pages = WRK_MISSING, {}, {}
    else:
        served = http(LEVELS, args.seconds)
        pages = signed_in(LEVELS, args.seconds)
    plot(args.plot, valid, served, pages)
    if args.json:
        data = {"validations": valid, "http": served, "signed_in": pages, "plot": str(args.plot)}
        print(json.dumps({**data, "not_measured": missing}))
        return
    if missing:
        print(missing)
    for title, data in (
        ("validations/s", valid),
        ("requests/s", served),
        ("signed-in page requests/s", pages),
    ):
        print(f"{title} at concurrency {', '.join(map(str, LEVELS))}")
        for name, series in data.items():
            cells = "".join(f"{series[level]:>10,.0f}" for level in LEVELS)
            print(f"  {name:<44}{cells}")
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
