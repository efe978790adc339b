"""The one load generator of every HTTP benchmark: ``wrk``, or no HTTP figures at all.

A load generator written in Python, on the same two cores as the server, saturates itself before
the server: every server then looks as fast as every other and each ratio reads about 1.00x. So
without ``wrk`` the HTTP benchmarks report "not measured" (with how to get it) instead of ratios.
``make bench`` installs it from Debian's packages when it can (bench/provision.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WRK_MISSING", "Result", "find_wrk", "run_wrk"]

WRK_MISSING = (
    "wrk is not installed: HTTP figures not measured "
    "(Debian: apt-get install wrk; `make bench` installs it when run as root)"
)


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    server_cpu: float = 0.0  # seconds of the server's CPU during the run, when measured

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: Sequence[str] = (),
    script: Path | None = None,
) -> Result:
    """One bounded ``wrk -t1`` run; any non-2xx answer or socket error counts in ``errors``.

    wrk counts a 3xx as "Non-2xx or 3xx": a signed-in page that redirects to sign-in fails here.
    """
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    out = done.stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not found:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    elapsed = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+)(?:, timeout (\d+))?", out
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(g) for g in socket_errors.groups() if g)
    return Result(int(found.group(1)), elapsed, failed)
