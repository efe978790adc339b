"""All the benchmarks of docs/performance.md in one run, ending with one table of ratios.

Each benchmark runs in a process of its own (bench/validate.py, http_load.py, signin_load.py,
acquire.py, stores.py, memory.py, scaling.py, telemetry.py, cold_start.py, all with ``--json``);
peers are measured in the same process and the same run as ours, so only ratios are compared
with the targets, never absolute times. ``--quick`` shortens every part (for a smoke run; its figures are
noisier). Exits 1 if a target is missed, 2 if none is missed but some could not be measured (no
``wrk``, no Redis: the table says which and why), 0 when every target was measured and met.
Usage: ``python bench/run.py [--quick] [--skip scaling,memory]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PARTS = (
    "validate",
    "http_load",
    "signin_load",
    "acquire",
    "stores",
    "memory",
    "scaling",
    "telemetry",
    "cold_start",
)
Row = tuple[str, str, float | None, str, bool | None]  # what, ours, ratio, target, met (None: n/a)


def _run(part: str, args: list[str]) -> dict[str, Any]:
    began = time.monotonic()
    print(f"running bench/{part}.py {' '.join(args)} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(HERE / f"{part}.py"), "--json", *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench/{part}.py failed ({done.returncode})")
    print(f"  {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument("--skip", default="", help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument(
        "--results", type=Path, default=HERE.parent / "build" / "bench-results.json",
        help="where every figure of the run is written as JSON",
    )  # fmt: skip
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(skip - set(PARTS)))}")
    quick = args.quick
    options = {
        "validate": ["--rounds", "3" if quick else "7"],
        "http_load": ["--seconds", "1" if quick else "3", "--rounds", "1" if quick else "3"],
        "signin_load": ["--seconds", "1", "--rounds", "3" if quick else "15"],
        "acquire": ["--rounds", "3" if quick else "7"],
        "stores": ["--seconds", "1" if quick else "3"],
        "memory": ["--tokens", "100000" if quick else "1000000"],
        "scaling": ["--seconds", "1" if quick else "2"],
        "telemetry": ["--rounds", "3" if quick else "11"],
        "cold_start": ["--rounds", "3" if quick else "15"],
    }
    results = {part: _run(part, options[part]) for part in PARTS if part not in skip}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))

    rows: list[Row] = []
    if "validate" in results:
        per_second, ratio = results["validate"]["per_second"], results["validate"]["ratios"]
        fresh = per_second["entra-ciam validate (fresh tokens)"]
        same = per_second["entra-ciam validate (repeated token)"]
        rows += [
            ("validate, fresh token vs PyJWT", f"{fresh:,.0f}/s", ratio["fresh vs PyJWT"], ">= 2.0x", ratio["fresh vs PyJWT"] >= 2.0),
            ("validate, fresh token vs Authlib", "", ratio["fresh vs Authlib"], "> 1x", ratio["fresh vs Authlib"] > 1),
            ("validate, fresh token vs joserfc", "", ratio["fresh vs joserfc"], "> 1x", ratio["fresh vs joserfc"] > 1),
            ("validate, repeated token vs PyJWT", f"{same:,.0f}/s", ratio["repeated vs PyJWT"], ">= 20x", ratio["repeated vs PyJWT"] >= 20),
        ]  # fmt: skip
    if "http_load" in results:
        rows += http_rows(results["http_load"], HTTP_LOAD_TARGETS)
    if "signin_load" in results:
        rows += http_rows(results["signin_load"], {})
    if "acquire" in results:
        for name, check in results["acquire"]["checks"].items():
            rows.append(
                (name, f"{check['ours_us']:.1f} us", check["ratio"], check["target"], check["met"])
            )
    if "stores" in results:
        rows += store_rows(results["stores"])
    if "memory" in results:
        memory = results["memory"]
        rows.append(
            (
                f"{memory['tokens']:,} distinct tokens: caches within bounds",
                f"RSS +{memory['rss_growth_mb']} MB",
                None,
                "within bounds",
                bool(memory["caches_within_bounds"]),
            )
        )
    if "scaling" in results:
        valid = results["scaling"]["validations"]
        ours = valid["entra-ciam"]
        for level in ours:
            best_peer = max(valid[name][level] for name in valid if name != "entra-ciam")
            rows.append(
                (
                    f"validations at concurrency {level} vs best peer",
                    f"{ours[level]:,.0f}/s",
                    ours[level] / best_peer,
                    "(plot)",
                    True,
                )
            )

    if "telemetry" in results:
        target = results["telemetry"]["target"]
        for name, ratio in results["telemetry"]["ratios"].items():
            rows.append((f"validate, {name}", "", ratio, f">= {target}x", ratio >= target))
        for name, ratio in results["telemetry"]["shown"].items():
            rows.append((f"validate, {name}", "", ratio, "(shown)", True))
    if "cold_start" in results:
        cold = results["cold_start"]
        ours_import = cold["imports"]["entra-ciam (validator, decorators, middlewares)"]["ms"]
        first = cold["first_request"]["entra-ciam"]["total_ms"]
        for name, ratio in cold["ratios"].items():
            measured = f"{first:.0f} ms" if name.startswith("first") else f"{ours_import:.0f} ms"
            goal = ">= 1.0x" if name == "import vs PyJWT" else "(shown)"
            rows.append(
                (f"cold start: {name}", measured, ratio, goal, ratio >= 1.0 or goal == "(shown)")
            )

    width = max(len(row[0]) for row in rows)
    print(f"\n{'benchmark':<{width}}  {'ours':>13}  {'ratio':>8}  {'target':<14} met")
    for what, measured, ratio, goal, met in rows:
        shown = f"{ratio:.2f}x" if ratio is not None else ""
        verdict = "n/a" if met is None else "yes" if met else "NO"
        print(f"{what:<{width}}  {measured:>13}  {shown:>8}  {goal:<14} {verdict}")
    reasons = sorted({reason for reason in not_measured(results)})
    for reason in reasons:
        print(f"not measured: {reason}")
    if "scaling" in results:
        print(f"\nplot: {results['scaling']['plot']}")
    print(f"every figure: {args.results}")
    if any(row[4] is False for row in rows):
        sys.exit(1)
    if any(row[4] is None for row in rows):
        sys.exit(2)


# bench/http_load.py's checks as run.py shows them: an unmeasured part still lists its targets.
HTTP_LOAD_TARGETS = {
    "HTTP repeated token vs no auth": ">= 0.85x",
    "HTTP fresh tokens vs no auth": ">= 0.75x",
    "HTTP repeated vs PyJWT style": "> 1x",
    "HTTP fresh vs PyJWT style": "> 1x",
    "FastAPI repeated vs fastapi-azure-auth": "> 1x",
    "FastAPI fresh vs fastapi-azure-auth": "> 1x",
}


def http_rows(part: dict[str, Any], targets: dict[str, str]) -> list[Row]:
    """The ratio rows of an HTTP part; "not measured" rows (no ratio) when wrk was missing."""
    checks: dict[str, dict[str, Any]] = part.get("ratios") or {}
    if not checks:  # the whole part was not measured: list what it would have checked
        return [(name, "not measured", None, target, None) for name, target in targets.items()]
    rows: list[Row] = []
    for name, check in checks.items():
        if check.get("ratio") is None:
            rows.append((name, "not measured", None, str(check["target"]), None))
        else:
            rows.append((name, "", float(check["ratio"]), str(check["target"]), bool(check["met"])))
    return rows


def store_rows(part: dict[str, Any]) -> list[Row]:
    """p50/p99 of a session read and write, and bytes per session, for each store (shown)."""
    rows: list[Row] = []
    clients = part["clients"]
    for kind, r in part["stores"].items():
        failed = int(r.get("failures", 0))
        rows.append(
            (
                f"{kind} store: session read p50/p99 ({clients} clients)",
                f"{r['read_p50_us']:,.0f}/{r['read_p99_us']:,.0f} us",
                None,
                f"no failures ({failed})" if failed else "(shown)",
                not failed,
            )
        )
        rows.append(
            (
                f"{kind} store: read of an unchanged session p50/p99",
                f"{r['reread_p50_us']:,.0f}/{r['reread_p99_us']:,.0f} us",
                None,
                "(shown)",
                True,
            )
        )
        rows.append(
            (
                f"{kind} store: session write p50/p99 ({clients} clients)",
                f"{r['write_p50_us']:,.0f}/{r['write_p99_us']:,.0f} us",
                None,
                "(shown)",
                True,
            )
        )
        stored = r.get("redis_memory_usage_bytes")
        rows.append(
            (
                f"{kind} store: bytes per session" + (" (in Redis)" if stored else ""),
                f"{stored or r['record_bytes']:,} B",
                None,
                "(shown)",
                True,
            )
        )
    for kind in part.get("not_measured", {}):
        rows.append((f"{kind} store: session read/write", "not measured", None, "(shown)", None))
    return rows


def not_measured(results: dict[str, Any]) -> list[str]:
    """Why parts of the run were not measured, as each part said."""
    reasons: list[str] = []
    for part in results.values():
        missing = part.get("not_measured")
        if isinstance(missing, str):
            reasons.append(missing)
        elif isinstance(missing, dict):
            reasons += [str(v) for v in missing.values()]
    return reasons


if __name__ == "__main__":
    main()
