"""A bounded async load generator on httpx, for the reliability tests.

``run_load`` keeps ``clients`` requests in flight for ``seconds``, asks ``next_request`` what to
send, and asks ``judge`` whether each answer is the right one. Faults are plain callables run in
a worker thread at given fractions of the run, so a test reads as a timeline. Every request has a
client-side timeout: a server that hangs shows up as a failure, never as a stuck test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

DEFAULT_SECONDS = 10.0
DEFAULT_CLIENTS = 32


def load_seconds(default: float = DEFAULT_SECONDS) -> float:
    """``ENTRA_CIAM_LOAD_SECONDS`` (e.g. 30 for the full run), else a CI-sized default."""
    raw = os.environ.get("ENTRA_CIAM_LOAD_SECONDS", "")
    return float(raw) if raw.strip() else default


def load_clients(default: int = DEFAULT_CLIENTS) -> int:
    raw = os.environ.get("ENTRA_CIAM_LOAD_CLIENTS", "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True)
class Req:
    """One request to send; ``kind`` names the case so verdicts can be counted per case."""

    kind: str
    method: str = "GET"
    path: str = "/"
    headers: Sequence[tuple[str, str]] = ()
    json: object = None


# judge(req, response) -> None when the answer is right, else a short reason.
Judge = Callable[[Req, httpx.Response], str | None]


@dataclass(frozen=True)
class Fault:
    """``action`` runs (in a thread) once ``at`` (0..1) of the run has elapsed."""

    at: float
    name: str
    action: Callable[[], object]


@dataclass
class LoadResult:
    seconds: float = 0.0
    clients: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    # "kind: reason" for every wrong verdict, transport error or timeout.
    failures: Counter[str] = field(default_factory=Counter)
    max_latency: float = 0.0
    faults_run: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    def figures(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 1),
            "clients": self.clients,
            "requests": self.requests,
            "failed": self.failed,
            "failures": dict(self.failures),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "max_latency_s": round(self.max_latency, 2),
            "faults": self.faults_run,
        }

    def summary(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        return (
            f"{self.requests} requests from {self.clients} clients in {self.seconds:.1f} s "
            f"({rate:.0f}/s), failed {self.failed}, statuses {dict(sorted(self.statuses.items()))}, "
            f"max latency {self.max_latency:.2f} s, faults {self.faults_run}"
        )


async def run_load(
    base_url: str,
    next_request: Callable[[int], Req],
    judge: Judge,
    *,
    seconds: float | None = None,
    clients: int | None = None,
    faults: Sequence[Fault] = (),
    request_timeout: float = 10.0,
) -> LoadResult:
    """Drive ``base_url`` for ``seconds`` with ``clients`` concurrent loops; run ``faults``."""
    seconds = load_seconds() if seconds is None else seconds
    clients = load_clients() if clients is None else clients
    result = LoadResult(clients=clients)
    counter = iter(range(1 << 62))
    # Set once the clients exist: building 32 clients (an SSL context each) can take over a
    # second on a busy machine, and faults timed from before that would run before any request.
    start = deadline = 0.0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one_client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            req = next_request(next(counter))
            began = time.monotonic()
            try:
                response = await http.request(
                    req.method, req.path, headers=list(req.headers), json=req.json
                )
            except httpx.TransportError as exc:
                result.failures[f"{req.kind}: {type(exc).__name__}"] += 1
                result.requests += 1
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
                continue
            elapsed = time.monotonic() - began
            result.max_latency = max(result.max_latency, elapsed)
            result.requests += 1
            result.statuses[response.status_code] += 1
            result.kinds[req.kind] += 1
            verdict = judge(req, response)
            if verdict is not None:
                result.failures[f"{req.kind}: {verdict}"] += 1

    async def injector() -> None:
        for fault in sorted(faults, key=lambda f: f.at):
            wait = start + fault.at * seconds - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await asyncio.to_thread(fault.action)
            result.faults_run.append(fault.name)

    # One connection per client, each in its own pool: a shared pool serialises on its lock and
    # becomes the bottleneck long before the server does.
    async with contextlib.AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=request_timeout, limits=limits)
            )
            for _ in range(clients)
        ]
        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(injector(), *(one_client(http) for http in pools))
    result.seconds = time.monotonic() - start
    return result


async def fetch(url: str, headers: Sequence[tuple[str, str]] = ()) -> httpx.Response:
    """One GET outside the load, e.g. to warm the API up before the clock starts."""
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url, headers=list(headers))


def rss_bytes() -> int:
    """Resident set size of this process (Linux), to show memory stays flat under load."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def record(scenario: str, **figures: object) -> None:
    """Append one scenario's figures to ``ENTRA_CIAM_LOAD_REPORT`` (JSON lines), if it is set.

    docs/reliability.md is filled from this file after a full run.
    """
    path = os.environ.get("ENTRA_CIAM_LOAD_REPORT", "")
    if not path:
        return
    with open(path, "a") as out:
        out.write(json.dumps({"scenario": scenario, **figures}, default=str) + "\n")
