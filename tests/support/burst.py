"""One user, many concurrent requests (issue 13): the burst runs and the table they make.

A signed-in user whose access token has just expired sends 64 concurrent requests that each ask
for a token (a page with several panels, several tabs). Three set-ups, all real servers on
127.0.0.1: Flask on Werkzeug's threaded server (SQLite sessions), Starlette on uvicorn (memory
sessions), and two Flask processes sharing Redis, the requests alternating between them. The
emulator runs either as Entra does (a used refresh token stays good) or with strict one-time
refresh tokens (a reuse revokes the sign-in). Redemptions are counted at the emulator.

"Just expired": the user signs in while the emulator issues access tokens for 300 s, which MSAL
already counts as expired (it refreshes with less than five minutes left); then the emulator goes
back to an hour, so the refreshed token lasts and later requests need no redemption.

``python -m tests.support.burst [--runs N]`` prints the table of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from entra_ciam.devidp import DevIdp
from entra_ciam.devidp.testing import running_devidp, token_requests
from tests.support import burst_app
from tests.support.todo_api import free_port, serving, start_example, stop_process
from tests.support.todo_stack import config_env
from tests.support.webapps import AppBrowser, LateASGI, LateWSGI, Stack, serving_wsgi

__all__ = [
    "BURST",
    "KINDS",
    "MODES",
    "BurstResult",
    "Site",
    "burst",
    "run_burst",
    "sign_in",
    "site",
]

BURST = 64
EXPIRED_ON_ARRIVAL = 300  # seconds of access token lifetime MSAL already treats as expired
KINDS = ("flask", "starlette", "redis")
MODES = ("entra", "strict")
LABELS = {
    "flask": "Flask, threads (SQLite sessions)",
    "starlette": "Starlette, asyncio (memory sessions)",
    "redis": "two Flask processes on Redis",
}
COOKIE = "entra_ciam_session"


@dataclasses.dataclass
class BurstResult:
    kind: str
    mode: str
    attempts_in_app: int  # refresh-token redemptions MSAL started in the app's processes
    redemptions: int  # refresh-token requests that reached the emulator
    served: int  # requests answered with a token
    statuses: Counter[int]
    tokens: int  # distinct access tokens handed out
    signed_in_after: bool  # the next request still gets a token without signing in again
    redemptions_after: int  # redemptions the next request needed


MODE_LABELS = {"entra": "as Entra: reuse allowed", "strict": "strict one-time"}


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}\u2013{high}"  # an en dash, as in the issue


def table_row(results: list[BurstResult]) -> str:
    """One row of the issue's table for the runs of one set-up and mode: ranges over the runs."""
    first = results[0]
    signed_in = sum(r.signed_in_after for r in results)
    after = (
        "signed in"
        if signed_in == len(results)
        else "signed out"
        if signed_in == 0
        else f"signed out in {len(results) - signed_in} of {len(results)}"
    )
    return (
        f"| {LABELS[first.kind]} | {MODE_LABELS[first.mode]} "
        f"| {_span([r.attempts_in_app for r in results])} "
        f"| {_span([r.redemptions for r in results])} "
        f"| {_span([r.served for r in results])} of {BURST} | {after} |"
    )


@dataclasses.dataclass
class Site:
    idp: DevIdp
    webs: list[str]  # the app's base URL(s); requests alternate between them
    stats: Callable[[], int]  # refresh attempts in the app(s) since the last call


def _config(idp: DevIdp, base: str, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "redirect_uri": f"{base}/auth/redirect",
        "post_logout_redirect_uri": f"{base}/",
        "session_secret": Fernet.generate_key().decode(),
    }
    settings.update(overrides)
    return idp.entra_config("web-app", **settings)


def _emulator(webs: list[str], mode: str) -> Any:
    return running_devidp(
        extra_redirect_uris=[f"{web}/auth/redirect" for web in webs],
        extra_post_logout_redirect_uris=[f"{web}/" for web in webs],
        lifetimes={"access_token": EXPIRED_ON_ARRIVAL},
        one_time_refresh_tokens=mode == "strict",
    )


@contextlib.contextmanager
def _in_process(kind: str, mode: str, tmp: Path, **options: Any) -> Iterator[Site]:
    late: Any = LateWSGI() if kind == "flask" else LateASGI()
    server = serving_wsgi(late) if kind == "flask" else serving(late)
    with server as base, _emulator([base], mode) as idp:
        if kind == "flask":
            config = _config(idp, base, session_store=f"sqlite:///{tmp / 'sessions.db'}")
            late.app = burst_app.flask_app(config, **options)
        else:
            config = _config(idp, base, session_store="memory://")
            late.app = burst_app.starlette_app(config, **options)
        burst_app.refresh_attempts.take()
        yield Site(idp, [base], burst_app.refresh_attempts.take)


@contextlib.contextmanager
def _two_processes(mode: str, tmp: Path, redis_url: str) -> Iterator[Site]:
    import redis

    prefix = f"test-burst-{secrets.token_hex(4)}:"
    ports = [free_port(), free_port()]
    webs = [f"http://127.0.0.1:{port}" for port in ports]
    secret = Fernet.generate_key().decode()
    client = redis.Redis.from_url(redis_url)
    try:
        with _emulator(webs, mode) as idp, contextlib.ExitStack() as processes:
            for name, port, web in zip("AB", ports, webs, strict=True):
                store = f"{redis_url}?prefix={prefix}&timeout=2"
                config = _config(idp, web, session_store=store, session_secret=secret)
                proc, _ = start_example(
                    "tests.support.burst_app",
                    config_env(config),
                    port=port,
                    log=tmp / f"burst-{name}.log",
                )
                processes.callback(stop_process, proc)

            def stats() -> int:
                return sum(httpx.get(f"{web}/_stats").json()["refresh_attempts"] for web in webs)

            yield Site(idp, webs, stats)
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def site(
    kind: str, mode: str, tmp: Path, redis_url: str = "redis://127.0.0.1:6379/0", **options: Any
) -> Any:
    """The emulator and the app(s) of one set-up, started and stopped around the block.

    ``options`` go to the in-process app (``retry_after_limit``).
    """
    if kind == "redis":
        return _two_processes(mode, tmp, redis_url)
    return _in_process(kind, mode, tmp, **options)


def sign_in(running: Site, tmp: Path) -> str:
    """Sign Ada in on the first app; return the session cookie. Tokens issued from now on last."""
    with AppBrowser(Stack(running.idp, running.webs[0], "", None, tmp)) as browser:
        page = browser.sign_in(next_path="/me")
        assert page.status_code == 200 and page.json()["user"], page.text
        cookie = browser.session_cookie(COOKIE)
    assert cookie is not None
    tokens = running.idp.provider.tokens
    tokens.lifetimes = dataclasses.replace(tokens.lifetimes, access_token=3600)
    return cookie


async def burst(webs: list[str], cookie: str, n: int = BURST) -> list[httpx.Response]:
    """``n`` concurrent GET /token with the session cookie, alternating between ``webs``."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    async with httpx.AsyncClient(limits=limits, timeout=60.0, headers=headers) as client:
        return await asyncio.gather(*(client.get(f"{webs[i % len(webs)]}/token") for i in range(n)))


def run_burst(running: Site, kind: str, mode: str, tmp: Path) -> BurstResult:
    """Sign in, send the burst, then one more request; count at the emulator."""
    cookie = sign_in(running, tmp)
    running.stats()
    token_requests(running.idp, reset=True)
    responses = asyncio.run(burst(running.webs, cookie))
    redemptions = token_requests(running.idp, reset=True)["requested"].get("refresh_token", 0)
    attempts = running.stats()
    served = [r for r in responses if r.status_code == 200]
    after = httpx.get(f"{running.webs[-1]}/token", headers={"Cookie": f"{COOKIE}={cookie}"})
    redemptions_after = token_requests(running.idp, reset=True)["requested"].get("refresh_token", 0)
    return BurstResult(
        kind=kind,
        mode=mode,
        attempts_in_app=attempts,
        redemptions=redemptions,
        served=len(served),
        statuses=Counter(r.status_code for r in responses),
        tokens=len({r.json()["token"] for r in served}),
        signed_in_after=after.status_code == 200,
        redemptions_after=redemptions_after,
    )


def main(argv: list[str] | None = None) -> int:
    import logging
    import tempfile

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m tests.support.burst", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="bursts per set-up and mode")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args(argv)
    print(
        "| app | identity provider | refresh attempts in the app | redemptions at the IdP "
        "| requests that got a token | after the burst |"
    )
    print("| --- | --- | ---: | ---: | --- | --- |")
    for kind in args.kinds.split(","):
        for mode in args.modes.split(","):
            results = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as folder:
                    tmp = Path(folder)
                    with site(kind, mode, tmp) as running:
                        results.append(run_burst(running, kind, mode, tmp))
            print(table_row(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
