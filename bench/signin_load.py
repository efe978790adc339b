"""Requests/s of a page behind sign-in: no auth, entra-ciam with each store, identity, Authlib.

Every app (bench/signin_server.py) runs in a process of its own, one process each, all up at once.
The emulator (``entra_ciam.devidp``) runs here; a user signs in to each app through it, for real
(auth code flow, the emulator's pages, the app's own redirect route), and the cookies the app set
are what ``wrk`` (bench/loadgen.py) then sends. Before and after each measurement the page is
fetched with those cookies and must greet the user by name, and fetched without them and must
not: a measurement of a signed-out page cannot pass for a signed-in one (wrk also counts the
redirect to sign-in as an error). Pages run interleaved, round by round; each ratio is the
median over rounds of the ratio within a round (the shared machine's load drifts over seconds).
Usage: ``python bench/signin_load.py [--seconds 1] [--connections 32] [--rounds 15] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import html
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.common import ROOT, print_table
from bench.loadgen import WRK_MISSING, Result, find_wrk, run_wrk
from bench.signin_server import PAGE, greeting
from cryptography.fernet import Fernet
from tests.support.external import redis_available
from tests.support.todo_api import stop_process

from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import Browser, running_devidp

USER = defaults.USERS[0]  # (email, password, display name)
# identity answers an anonymous visit with a page that sends the browser on (meta refresh or link).
_AUTHORIZE_LINK = re.compile(r"""(?:URL=|href=['"])([^'"\s>]+/authorize\?[^'"\s>]+)""")


@dataclasses.dataclass(frozen=True)
class Page:
    name: str
    app: str  # an --app of bench/signin_server.py
    store: str = "memory"

    @property
    def signs_in(self) -> bool:
        return not self.app.endswith("-plain")


FLASK_PLAIN = Page("Flask, no auth", "flask-plain")
FLASK_MEMORY = Page("Flask + entra-ciam, memory store", "flask-ours", "memory")
FLASK_SQLITE = Page("Flask + entra-ciam, SQLite store", "flask-ours", "sqlite")
FLASK_REDIS = Page("Flask + entra-ciam, Redis store", "flask-ours", "redis")
FLASK_IDENTITY = Page("Flask + identity (Flask-Session, files)", "flask-identity")
FLASK_AUTHLIB = Page("Flask + Authlib (Flask's cookie session)", "flask-authlib")
STARLETTE_PLAIN = Page("Starlette, no auth", "starlette-plain")
STARLETTE_MEMORY = Page("Starlette + entra-ciam, memory store", "starlette-ours", "memory")
PAGES = (
    FLASK_PLAIN,
    FLASK_MEMORY,
    FLASK_SQLITE,
    FLASK_REDIS,
    FLASK_IDENTITY,
    FLASK_AUTHLIB,
    STARLETTE_PLAIN,
    STARLETTE_MEMORY,
)

# (row, ours, theirs, minimum ratio; None: strictly ahead; "shown": no target)
CHECKS: tuple[tuple[str, Page, Page, float | str | None], ...] = (
    ("signed-in Flask page, memory store vs no auth", FLASK_MEMORY, FLASK_PLAIN, 0.85),
    ("signed-in Flask page, Redis store vs no auth", FLASK_REDIS, FLASK_PLAIN, 0.7),
    ("signed-in Flask page, SQLite store vs no auth", FLASK_SQLITE, FLASK_PLAIN, "shown"),
    ("signed-in Flask page, memory store vs identity", FLASK_MEMORY, FLASK_IDENTITY, None),
    ("signed-in Flask page, SQLite store vs identity", FLASK_SQLITE, FLASK_IDENTITY, None),
    ("signed-in Flask page, Redis store vs identity", FLASK_REDIS, FLASK_IDENTITY, None),
    ("signed-in Flask page, memory store vs Authlib", FLASK_MEMORY, FLASK_AUTHLIB, "shown"),
    ("signed-in Starlette page, memory store vs no auth", STARLETTE_MEMORY, STARLETTE_PLAIN, 0.85),
)


def redis_missing() -> str | None:
    """Why the Redis store cannot be measured here, or None when Redis answers."""
    if redis_available():
        return None
    return "no Redis at 127.0.0.1:6379 (make bench starts one when redis-server is installed)"


@dataclasses.dataclass
class Served:
    """One running app with a signed-in user: where it is and the cookies that sign the user in."""

    page: Page
    url: str
    proc: subprocess.Popen[bytes]
    cookie: str = ""  # the Cookie header value; empty for no auth

    @property
    def headers(self) -> list[str]:
        return [f"Cookie: {self.cookie}"] if self.cookie else []

    def check(self) -> None:
        """The page greets the user with the cookies, and does not without them."""
        name = USER[2]
        # No cookie jar: each request carries exactly the cookies given here.
        signed_in = httpx.get(self.url + PAGE, headers={"Cookie": self.cookie}, timeout=10)
        if signed_in.status_code != 200 or signed_in.text != greeting(name):
            raise RuntimeError(
                f"{self.page.name}: the page is not signed in "
                f"({signed_in.status_code} {signed_in.text[:80]!r})"
            )
        if self.page.signs_in:
            anonymous = httpx.get(self.url + PAGE, timeout=10)
            if anonymous.status_code == 200 and anonymous.text == greeting(name):
                raise RuntimeError(f"{self.page.name}: the page is served without sign-in")


class SignedInPages:
    """The emulator and one server per page, each with a user signed in; stopped on exit."""

    def __init__(self, pages: Sequence[Page], workdir: Path) -> None:
        self.pages = list(pages)
        self.workdir = workdir
        self.redis_prefix = f"entra-ciam-bench:{secrets.token_hex(6)}:"
        self.served: dict[str, Served] = {}

    @contextlib.contextmanager
    def running(self) -> Iterator[dict[str, Served]]:
        with contextlib.ExitStack() as stack:
            sockets = {}
            for page in self.pages:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                stack.callback(sock.close)
                sock.bind(("127.0.0.1", 0))
                sock.listen(1024)
                sockets[page.name] = sock
            bases = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in sockets.items()}
            idp = stack.enter_context(
                running_devidp(extra_redirect_uris=[f"{b}/auth/redirect" for b in bases.values()])
            )
            stack.callback(self._clean_redis)
            for page in self.pages:
                proc = self._start(idp, page, sockets[page.name], bases[page.name])
                stack.callback(stop_process, proc)
                self.served[page.name] = Served(page, bases[page.name], proc)
            for served in self.served.values():
                _wait_until_up(served)
                if served.page.signs_in:
                    served.cookie = _sign_in(served, idp)
                served.check()
            yield self.served

    def _start(
        self, idp: DevIdp, page: Page, sock: socket.socket, base: str
    ) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")}
        workdir = self.workdir / page.name.replace(" ", "_").replace("/", "_")
        workdir.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "ENTRA_AUTHORITY": idp.authority,
                "ENTRA_CLIENT_ID": defaults.WEB_APP_CLIENT_ID,
                "ENTRA_CLIENT_SECRET": defaults.WEB_APP_CLIENT_SECRET,
                "ENTRA_CA_BUNDLE": idp.ca_bundle,
                "ENTRA_REDIRECT_URI": f"{base}/auth/redirect",
                "ENTRA_SESSION_SECRET": Fernet.generate_key().decode(),
                # identity and Authlib reach the emulator with requests: trust its CA there too.
                "REQUESTS_CA_BUNDLE": idp.ca_bundle,
                "BENCH_REDIS_PREFIX": self.redis_prefix,
            }
        )
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "signin_server.py"),
                f"--app={page.app}",
                f"--store={page.store}",
                f"--fd={sock.fileno()}",
                f"--workdir={workdir}",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=(sock.fileno(),),
        )

    def _clean_redis(self) -> None:
        if not any(p.store == "redis" and p.signs_in for p in self.pages) or redis_missing():
            return
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
        try:
            keys = list(client.scan_iter(match=self.redis_prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def _wait_until_up(served: Served, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(served.url + PAGE, timeout=5)
            return
        if time.monotonic() > deadline or served.proc.poll() is not None:
            raise RuntimeError(f"{served.page.name}: the server did not start")
        time.sleep(0.05)


def _sign_in(served: Served, idp: DevIdp) -> str:
    """Open the page, sign in wherever the app sends us, come back; the app's cookies."""
    with httpx.Client(timeout=20) as app, Browser() as pages:
        response = app.get(served.url + PAGE)
        for _ in range(12):
            if response.status_code == 200 and response.text == greeting(USER[2]):
                return "; ".join(f"{c.name}={c.value}" for c in app.cookies.jar)
            if response.status_code in (301, 302, 303, 307):
                location = urljoin(str(response.url), response.headers["location"])
            elif response.status_code == 200 and (found := _AUTHORIZE_LINK.search(response.text)):
                location = html.unescape(found.group(1))  # identity's login page: a link
            else:
                break
            if location.startswith(idp.pages_url) and urlsplit(location).path.endswith(
                "/authorize"
            ):
                result = pages.sign_in(location, email=USER[0], password=USER[1])
                if result.response_mode == "form_post":
                    response = app.post(result.redirect_uri, data=result.params)
                else:
                    response = app.get(result.url)
            else:
                response = app.get(location)
        raise RuntimeError(
            f"{served.page.name}: signing in did not end on the page "
            f"({response.status_code} {response.text[:200]!r})"
        )


def measure(
    served: dict[str, Served], connections: int, seconds: float, rounds: int
) -> dict[str, list[Result]]:
    """Every page once per round, the order reversed every other round; each page's runs.

    The machine is shared: its load drifts over seconds. Ratios are taken within a round (pages
    measured seconds apart) and the median over rounds is reported (see ``ratios``).
    """
    wrk = find_wrk()
    if wrk is None:
        raise RuntimeError(WRK_MISSING)
    runs: dict[str, list[Result]] = {name: [] for name in served}
    for item in served.values():  # warm-up: connections, caches, SQLite pages
        run_wrk(wrk, item.url + PAGE, connections=connections, seconds=1, headers=item.headers)
    order = list(served.items())
    for round_number in range(rounds):
        for name, item in order if round_number % 2 == 0 else reversed(order):
            began = cpu_seconds(item.proc.pid)
            result = run_wrk(
                wrk, item.url + PAGE, connections=connections, seconds=seconds, headers=item.headers
            )
            result.server_cpu = cpu_seconds(item.proc.pid) - began
            runs[name].append(result)
    for item in served.values():
        item.check()  # still signed in after the load
    return runs


def cpu_per_request(runs: list[Result]) -> float:
    """Microseconds of the server's CPU per request over all rounds: what the page costs the
    server whatever else the machine was doing (wrk's requests/s depend on that too)."""
    requests = sum(r.requests for r in runs)
    return sum(r.server_cpu for r in runs) / requests * 1e6 if requests else 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (gunicorn's worker), from /proc."""
    ticks = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in (pid, *map(int, children)):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def best(runs: list[Result]) -> Result:
    """The fastest run, or the first with errors (a run with failures is the one reported)."""
    failed = [r for r in runs if r.errors]
    return failed[0] if failed else max(runs, key=lambda r: r.per_second)


def ratios(runs: dict[str, list[Result]], missing: dict[str, str]) -> dict[str, dict[str, object]]:
    """Each check of issue 15: the median over rounds of the ratio within a round, its target
    and whether it is met (never with errors), or why it was not measured."""
    out: dict[str, dict[str, object]] = {}
    for row, ours, theirs, minimum in CHECKS:
        if minimum == "shown":
            target = "(shown)"
        elif minimum is None:
            target = "> 1x"
        else:
            target = f">= {minimum}x"
        absent = [missing[p.name] for p in (ours, theirs) if p.name in missing]
        if absent:
            out[row] = {"ratio": None, "target": target, "met": None, "not_measured": absent[0]}
            continue
        mine, peer = runs[ours.name], runs[theirs.name]
        per_round = [a.per_second / b.per_second for a, b in zip(mine, peer, strict=True)]
        value = statistics.median(per_round)
        if any(r.errors for r in (*mine, *peer)):
            met: bool = False
        elif isinstance(minimum, float):
            met = value >= minimum
        else:
            met = minimum == "shown" or value > 1.0
        out[row] = {
            "ratio": value,
            "target": target,
            "met": met,
            "rounds": [round(r, 3) for r in per_round],
            # the same comparison by the server's CPU per request (theirs over ours)
            "cpu_ratio": cpu_per_request(peer) / max(cpu_per_request(mine), 1e-9),
        }
    return out


def run(
    pages: Sequence[Page], connections: int, seconds: float, rounds: int
) -> tuple[dict[str, list[Result]], dict[str, str], dict[str, int]]:
    """Results, the pages not measured (and why), and each page's Cookie header size."""
    missing: dict[str, str] = {}
    if find_wrk() is None:
        return {}, {p.name: WRK_MISSING for p in pages}, {}
    reason = redis_missing()
    if reason is not None:
        missing.update({p.name: reason for p in pages if p.store == "redis" and p.signs_in})
    measured = [p for p in pages if p.name not in missing]
    with (
        tempfile.TemporaryDirectory(prefix="bench-signin-") as workdir,
        SignedInPages(measured, Path(workdir)).running() as served,
    ):
        results = measure(served, connections, seconds, rounds)
        cookies = {name: len(item.cookie) for name, item in served.items()}
    return results, missing, cookies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs, missing, cookies = run(PAGES, args.connections, args.seconds, args.rounds)
    ratio = ratios(runs, missing)
    results = {name: best(page_runs) for name, page_runs in runs.items()}
    if args.json:
        data = {
            name: {
                "per_second": r.per_second,
                "errors": r.errors,
                "cookie_bytes": cookies[name],
                "rounds": [round(run.per_second) for run in runs[name]],
                "server_cpu_us_per_request": round(cpu_per_request(runs[name]), 1),
            }
            for name, r in results.items()
        }
        generator = "wrk -t1" if find_wrk() else None
        print(
            json.dumps(
                {"generator": generator, "results": data, "not_measured": missing, "ratios": ratio},
                indent=2,
            )
        )
        return
    rows = [
        (
            name,
            f"{r.per_second:,.0f} req/s",
            f"{r.errors} errors"
            if r.errors
            else f"{cpu_per_request(runs[name]):.0f} us server CPU/request, "
            f"cookie {cookies[name]} bytes",
        )
        for name, r in results.items()
    ]
    rows += [(name, "not measured", reason) for name, reason in missing.items()]
    for name, check in ratio.items():
        if check["ratio"] is None:
            rows.append((name, "not measured", str(check["not_measured"])))
        else:
            verdict = "" if check["met"] else " MISSED"
            rows.append(
                (
                    name,
                    f"{check['ratio']:.2f}x",
                    f"target {check['target']}{verdict} (by server CPU: {check['cpu_ratio']:.2f}x)",
                )
            )
    print_table(f"GET {PAGE} signed in, {args.connections} connections, wrk -t1", rows)


if __name__ == "__main__":
    main()
