"""All the benchmarks of docs/performance.md in one run, ending with one table of ratios.

Each benchmark runs in a process of its own (bench/validate.py, http_load.py, acquire.py,
memory.py, scaling.py, telemetry.py, all with ``--json``); peers are measured in the same process and the same
run as ours, so only ratios are compared with the targets, never absolute times. ``--quick``
shortens every part (for a smoke run; its figures are noisier). Exits 1 if a target is missed.
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
PARTS = ("validate", "http_load", "acquire", "memory", "scaling", "telemetry")


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
        "acquire": ["--rounds", "3" if quick else "7"],
        "memory": ["--tokens", "100000" if quick else "1000000"],
        "scaling": ["--seconds", "1" if quick else "2"],
        "telemetry": ["--rounds", "3" if quick else "11"],
    }
    results = {part: _run(part, options[part]) for part in PARTS if part not in skip}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))

    # (what, measured, ratio, goal, met)
    rows: list[tuple[str, str, float | None, str, bool]] = []
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
        for name, check in results["http_load"]["ratios"].items():
            rows.append((name, "", check["ratio"], check["target"], bool(check["met"])))
    if "acquire" in results:
        micro = results["acquire"]["microseconds"]
        ours_name = next(iter(micro))
        for name, value in results["acquire"]["msal_over_ours"].items():
            if name == ours_name:
                continue
            target = name == "msal, app per request"
            rows.append(
                (
                    f"acquire_token_for_user vs {name}",
                    f"{micro[ours_name]:.1f} us",
                    value,
                    ">= 5x" if target else "(shown)",
                    value >= 5 if target else True,
                )
            )
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

    width = max(len(row[0]) for row in rows)
    print(f"\n{'benchmark':<{width}}  {'ours':>13}  {'ratio':>8}  {'target':<14} met")
    for what, measured, ratio, goal, met in rows:
        shown = f"{ratio:.2f}x" if ratio is not None else ""
        print(f"{what:<{width}}  {measured:>13}  {shown:>8}  {goal:<14} {'yes' if met else 'NO'}")
    if "scaling" in results:
        print(f"\nplot: {results['scaling']['plot']}")
    print(f"every figure: {args.results}")
    if not all(row[4] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
