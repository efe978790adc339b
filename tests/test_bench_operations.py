"""The operations benchmarks measure what they claim (bench/telemetry.py, bench/operations_plot.py):
behaviour only, never a time.

The overhead benchmark's "on" rounds are counted by the SDK reader (the script checks the reader's
totals against the validations it made and exits 1 otherwise); the plot script's short run meets
each fault it draws: refusals of every careless kind, 503s of the cold instance while the emulator
is down, failed key fetches, and a picture written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.todo_api import ROOT


def run_json(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_overhead_benchmark_counts_its_on_rounds() -> None:
    result = run_json("bench/telemetry.py", "--rounds", "1", "--tokens", "200", "--repeat", "10000")
    # One round of each mode: the "on" one made 200 fresh and 10,000 repeated validations.
    assert result["collected"] == {"valid": 10_200, "hits": 10_000}
    ratios = result["ratios"]
    assert isinstance(ratios, dict)
    assert set(ratios) == {
        "fresh tokens, metrics on vs off",
        "repeated tokens, metrics on vs off",
    }
    assert all(ratio > 0 for ratio in ratios.values())


def test_the_operations_plot_meets_every_fault(tmp_path: Path) -> None:
    out = tmp_path / "operations.png"
    figures = run_json("bench/operations_plot.py", "--seconds", "10", "--out", str(out))
    assert out.read_bytes().startswith(b"\x89PNG")
    events = [what for _, what in figures["events"]]  # type: ignore[attr-defined]
    assert events == [
        "emulator stopped",
        "a cold API instance starts",
        "emulator back",
        "keys rotated",
    ]
    totals = figures["totals"]
    assert isinstance(totals, dict)
    validations = totals["entra_ciam.validations"]
    for reason in ("signature", "audience", "malformed", "unknown_key"):
        assert validations[f"outcome=refused reason={reason}"] > 0, validations
    assert validations["outcome=unavailable reason=idp_unavailable"] > 0  # the cold instance
    assert validations["outcome=valid"] > 0
    refreshes = totals["entra_ciam.key_refreshes"]
    assert sum(v for k, v in refreshes.items() if "outcome=failed" in k) > 0, refreshes
    assert sum(v for k, v in refreshes.items() if "outcome=ok" in k) > 0, refreshes
    acquisitions = totals["entra_ciam.token_acquisitions"]
    assert acquisitions["kind=user outcome=ok source=memo"] > 0
