"""Requests/s of the todo API on 127.0.0.1: no auth, ours (repeated and fresh tokens), PyJWT.

The server runs in its own process (bench/http_server.py, one uvicorn worker); the load comes from
``wrk`` (bench/loadgen.py) with one thread and ``--connections`` keep-alive connections; without
wrk nothing is measured and the output says so. Every run is bounded by ``--seconds``; a run with
any non-2xx answer is reported as invalid.

"fresh" rotates, in order, through a pool of distinct pre-minted tokens larger than the
validator's cache (4096), so every request misses the cache: the full signature check each time.
Usage: ``python bench/http_load.py [--seconds 3] [--connections 32] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.common import ROOT, mint_pool, print_table
from bench.loadgen import WRK_MISSING, Result, find_wrk, run_wrk
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.todo_api import stop_process
from tests.support.tokens import TokenFactory

PATH = "/api/todolist"
FRESH_POOL = 6000  # > the validator's default cache of 4096: a cyclic walk never hits it

_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i %% #tokens + 1
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


@dataclass(frozen=True)
class Config:
    name: str
    app: str  # an --app of bench/http_server.py
    tokens: str  # none, repeated, fresh


CONFIGS = (
    Config("no auth", "plain", "none"),
    Config("entra-ciam, repeated token", "ours", "repeated"),
    Config("entra-ciam, fresh tokens", "ours", "fresh"),
    Config("PyJWT (fastapi-azure-auth style), repeated", "pyjwt", "repeated"),
    Config("PyJWT (fastapi-azure-auth style), fresh", "pyjwt", "fresh"),
    Config("FastAPI + entra-ciam, repeated", "ours-fastapi", "repeated"),
    Config("FastAPI + entra-ciam, fresh", "ours-fastapi", "fresh"),
    Config("FastAPI + fastapi-azure-auth, repeated", "faa", "repeated"),
    Config("FastAPI + fastapi-azure-auth, fresh", "faa", "fresh"),
)


class Bench:
    """One stub, one token pool, one temp dir: shared by every server this run starts."""

    def __init__(self, stub: OIDCStub, factory: TokenFactory, workdir: Path, pool: int) -> None:
        self.stub = stub
        self.factory = factory
        self.workdir = workdir
        self.one = factory.mint()
        self.fresh = mint_pool(factory, pool)
        self.fresh_file = workdir / "fresh-tokens.txt"
        self.fresh_file.write_text("\n".join(self.fresh) + "\n")
        self.wrk = find_wrk()

    @contextlib.contextmanager
    def server(self, app: str) -> Iterator[str]:
        """A bench/http_server.py process; yields its URL once it answers, stops it after."""
        db = self.workdir / f"todo-{app}-{time.monotonic_ns()}.sqlite3"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "http_server.py"),
                f"--app={app}",
                f"--db={db}",
                f"--authority={self.stub.authority}",
                f"--jwks-uri={self.stub.jwks_uri}",
                f"--issuer={self.factory.issuer}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("READY "):
                raise RuntimeError(f"the bench server did not start ({app})")
            url = line.split()[1]
            headers = {} if app == "plain" else {"Authorization": f"Bearer {self.one}"}
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(httpx.TransportError):
                    answer = httpx.get(url + PATH, headers=headers, timeout=5)
                    if answer.status_code == 200:
                        break
                    raise RuntimeError(f"{app} answered {answer.status_code}: {answer.text}")
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the bench server did not answer ({app})")
                time.sleep(0.05)
            yield url
        finally:
            stop_process(proc)

    def load(self, url: str, tokens: str, connections: int, seconds: float) -> Result:
        if self.wrk is None:
            raise RuntimeError(WRK_MISSING)
        headers: list[str] = []
        script = None
        if tokens == "repeated":
            headers.append(f"Authorization: Bearer {self.one}")
        elif tokens == "fresh":
            script = self.workdir / "fresh.lua"
            script.write_text(_LUA % (self.fresh_file, PATH))
        return run_wrk(
            self.wrk,
            url + PATH,
            connections=connections,
            seconds=seconds,
            headers=headers,
            script=script,
        )

    def measure(
        self, configs: Sequence[Config], connections: int, seconds: float, rounds: int = 3
    ) -> dict[str, Result]:
        """Every app's server up at once; configurations interleaved round by round, best kept.

        Interleaving spreads the noise of a shared machine over all contenders alike.
        """
        best: dict[str, Result] = {}
        with contextlib.ExitStack() as stack:
            urls = {app: stack.enter_context(self.server(app)) for app in {c.app for c in configs}}
            for config in configs:  # warm-up: keys, connections, SQLite pages
                self.load(urls[config.app], config.tokens, connections, min(1.0, seconds))
            for _ in range(rounds):
                for config in configs:
                    result = self.load(urls[config.app], config.tokens, connections, seconds)
                    kept = best.get(config.name)
                    if kept is not None and kept.errors:
                        continue  # a run with failures stays the one reported
                    if kept is None or result.errors or result.per_second > kept.per_second:
                        best[config.name] = result
        return best


@contextlib.contextmanager
def bench(pool: int = FRESH_POOL) -> Iterator[Bench]:
    factory = TokenFactory()
    with running_stub(factory) as stub, tempfile.TemporaryDirectory() as workdir:
        yield Bench(stub, factory, Path(workdir), pool)


def ratios(results: dict[str, Result]) -> dict[str, dict[str, object]]:
    """Each ratio of issue 6's HTTP targets: its value, the target and whether it is met."""
    rate = {name: result.per_second for name, result in results.items()}
    checks = [
        ("HTTP repeated token vs no auth", "entra-ciam, repeated token", "no auth", 0.85),
        ("HTTP fresh tokens vs no auth", "entra-ciam, fresh tokens", "no auth", 0.75),
        (
            "HTTP repeated vs PyJWT style",
            "entra-ciam, repeated token",
            "PyJWT (fastapi-azure-auth style), repeated",
            None,
        ),
        (
            "HTTP fresh vs PyJWT style",
            "entra-ciam, fresh tokens",
            "PyJWT (fastapi-azure-auth style), fresh",
            None,
        ),
        (
            "FastAPI repeated vs fastapi-azure-auth",
            "FastAPI + entra-ciam, repeated",
            "FastAPI + fastapi-azure-auth, repeated",
            None,
        ),
        (
            "FastAPI fresh vs fastapi-azure-auth",
            "FastAPI + entra-ciam, fresh",
            "FastAPI + fastapi-azure-auth, fresh",
            None,
        ),
    ]
    out: dict[str, dict[str, object]] = {}
    for name, ours, theirs, minimum in checks:
        value = rate[ours] / rate[theirs]
        # None: "ahead of" the peer, strictly faster
        met = value > 1.0 if minimum is None else value >= minimum
        target = "> 1x" if minimum is None else f">= {minimum}x"
        out[name] = {"ratio": value, "target": target, "met": met}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if find_wrk() is None:
        if args.json:
            print(json.dumps({"generator": None, "not_measured": WRK_MISSING}))
        else:
            print(WRK_MISSING)
        return
    with bench() as b:
        generator = "wrk -t1"
        results = b.measure(CONFIGS, args.connections, args.seconds, args.rounds)
    ratio = ratios(results)
    if args.json:
        data = {k: {"per_second": v.per_second, "errors": v.errors} for k, v in results.items()}
        print(json.dumps({"generator": generator, "results": data, "ratios": ratio}, indent=2))
        return
    rows = [
        (name, f"{r.per_second:,.0f} req/s", f"{r.errors} errors" if r.errors else "ok")
        for name, r in results.items()
    ]
    rows += [
        (name, f"{r['ratio']:.2f}x", f"target {r['target']}{'' if r['met'] else ' MISSED'}")
        for name, r in ratio.items()
    ]
    print_table(f"GET {PATH}, {args.connections} connections, {generator}", rows)


if __name__ == "__main__":
    main()
