"""The picture of docs/operations.md: the demo under a bounded load through a fault, drawn from
the library's own OpenTelemetry metrics.

The demo's three parts run on 127.0.0.1 in this process: the emulator, the todo API (Starlette on
uvicorn) and the Flask todo web app (werkzeug). ``entra_ciam.opentelemetry.instrument()`` feeds an
SDK ``MeterProvider`` whose in-memory reader is collected once a second; every line of the plot
is a difference of two collections, nothing is counted by this script.

The load, for ``--seconds`` (60):

- four signed-in browsers (two people) open the todo page in turn, so the web app acquires a
  token for the API (the emulator issues 315-second access tokens: the memo serves them for 15
  seconds, then MSAL refreshes them at the identity provider) and the API validates it;
- a careless client calls the API twice a second with a token whose signature was altered, an
  ID token instead of an access token, garbage, and a token signed by a key Entra never
  published (each unknown ``kid`` may make the validator fetch the keys again, at most once per
  ``unknown_kid_interval``);
- while the emulator is down, a second instance of the API starts cold (it was just scaled
  out) and validates a user's token twice a second.

Time runs faster than in production so that each rule shows up: the validators refresh their keys
every 10 seconds (Entra: 12 hours), retry every 2 and look for an unknown ``kid`` at most every 2
(5 minutes). The faults: the emulator stops at 30% of the run and comes back (same port, same keys
and grants) at 55%; at 75% its signing keys are rotated (the next key was published ahead, as
Entra does, so no request waits for it). Usage::

    python bench/operations_plot.py [--seconds 60] [--out docs/operations.png]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from examples.flask_todo import create_app
from examples.starlette_api import create_app as create_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tests.support.otel import Points
from tests.support.otel import points as read_points
from tests.support.todo_api import serving
from tests.support.todo_stack import web_config
from tests.support.tokens import TokenFactory
from tests.support.webapps import AppBrowser, LateWSGI, serving_wsgi

from entra_ciam import AccessTokenValidator, AuthError
from entra_ciam.devidp import defaults
from entra_ciam.devidp.registrations import Registrations, default_mapping
from entra_ciam.devidp.server import DevIdp
from entra_ciam.opentelemetry import instrument, uninstrument
from entra_ciam.sessions import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
ACCESS_TOKEN_LIFETIME = 315  # seconds: the memo serves a token for 15 s, then MSAL refreshes it


@dataclass
class Demo:
    """The three parts; the emulator can be stopped and started again on the same ports."""

    idp: DevIdp
    web: str
    api: str
    state: str
    registrations: Registrations

    @property
    def base(self) -> str:
        """The web app's address (what ``AppBrowser`` opens)."""
        return self.web

    def stop_idp(self) -> None:
        self.idp.stop()

    def start_idp(self) -> None:
        # Entra keeps its grants through an outage; the emulator keeps them in memory, so the
        # restarted one is handed the first one's (refresh tokens issued before stay good).
        grants = self.idp.provider.store
        port = urlsplit(self.idp.authority).port
        pages = urlsplit(self.idp.pages_url).port
        again = DevIdp(
            self.registrations,
            state_dir=self.state,
            port=port or 0,
            pages_port=pages or 0,
            test_mode=True,
            announce=lambda _line: None,
        )
        self.idp = again.start()
        self.idp.provider.store = self.idp.provider.tokens.store = grants

    def rotate_keys(self) -> None:
        self.idp.rotate_keys()

    def validator(self) -> AccessTokenValidator:
        """A validator of the API, with the run's fast clock (see the module docstring)."""
        return AccessTokenValidator(
            self.idp.authority,
            defaults.TODO_API_CLIENT_ID,
            verify=self.idp.ca_bundle,
            accept_v1_audience=True,
            refresh_interval=10,
            retry_interval=2,
            unknown_kid_interval=2,
            http_timeout=2,
        )


@contextlib.contextmanager
def demo(tmp: str) -> Iterator[Demo]:
    late = LateWSGI()
    with serving_wsgi(late) as web:
        registrations = Registrations.from_mapping(
            default_mapping(
                extra_redirect_uris=[f"{web}/auth/redirect"],
                extra_post_logout_redirect_uris=[f"{web}/"],
                lifetimes={"access_token": ACCESS_TOKEN_LIFETIME},
            )
        )
        idp = DevIdp(
            registrations,
            state_dir=tmp,
            port=0,
            pages_port=0,
            test_mode=True,
            announce=lambda _line: None,
        ).start()
        running = Demo(idp, web, "", tmp, registrations)
        try:
            validator = running.validator()
            validator.warm_up()
            api_app = create_api(validator=validator, db_path=Path(tmp) / "todo.sqlite3")
            with serving(api_app) as api:
                running.api = api
                config = web_config(idp, web)
                late.app = create_app(config, api_base_url=api, store=MemoryStore())
                yield running
        finally:
            running.idp.stop()


def run(seconds: float, out: Path) -> dict[str, Any]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(meter_provider=provider)
    samples: list[tuple[float, Points]] = []
    events: list[tuple[float, str]] = []
    statuses: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ops-plot-") as tmp, demo(tmp) as stack:
            browsers = []
            for index in range(4):
                browser = AppBrowser(stack)  # type: ignore[arg-type]
                page = browser.open("/todos", user=defaults.USERS[index % 2])
                assert page.status_code == 200, page.text[:300]
                browsers.append(browser)
            tampered, id_token, user_token = careless_tokens(stack)
            stop = threading.Event()
            start = time.monotonic()

            def at(fraction: float, what: str, action: Callable[[], None]) -> Callable[[], None]:
                def fire() -> None:
                    if not stop.wait(start + fraction * seconds - time.monotonic()):
                        action()
                        events.append((time.monotonic() - start, what))

                return fire

            def users(mine: list[AppBrowser]) -> Callable[[], None]:
                def load() -> None:  # one browser at a time, as a person clicks
                    n = 0
                    while not stop.is_set():
                        gate.wait()
                        answer = mine[n % len(mine)].get("/todos")
                        key = f"web {answer.status_code}"
                        statuses[key] = statuses.get(key, 0) + 1
                        n += 1
                        stop.wait(0.05)

                return load

            foreign = TokenFactory(
                stack.idp.issuer,
                tenant_id=stack.idp.registrations.tenant.id,
                audience=defaults.TODO_API_CLIENT_ID,
            ).mint()

            def careless() -> None:
                with httpx.Client(timeout=5) as client:
                    while not stop.is_set():
                        for token in (tampered, id_token, "not-a-token", foreign):
                            client.get(
                                f"{stack.api}/api/todolist",
                                headers={"Authorization": f"Bearer {token}"},
                            )
                        stop.wait(0.5)

            gate = threading.Event()
            gate.set()

            def restart() -> None:
                # The users hold still for the instant the emulator takes to come back with its
                # grants (see Demo.start_idp), so none refreshes against an empty grant store.
                gate.clear()
                time.sleep(0.3)
                stack.start_idp()
                gate.set()

            def scaled_out() -> None:
                threading.Thread(target=cold_instance, daemon=True).start()

            def cold_instance() -> None:
                validator = stack.validator()
                validator.warm_up(on_error="log")  # Entra is down: start anyway
                while not stop.is_set():
                    with contextlib.suppress(AuthError):
                        validator.validate(user_token)
                    stop.wait(0.5)

            def sampler() -> None:
                while not stop.is_set():
                    samples.append((time.monotonic() - start, read_points(reader)))
                    stop.wait(1.0)

            threads = [
                threading.Thread(target=target, daemon=True)
                for target in (
                    sampler,
                    users(browsers[:2]),
                    users(browsers[2:]),
                    careless,
                    at(0.30, "emulator stopped", stack.stop_idp),
                    at(0.40, "a cold API instance starts", scaled_out),
                    at(0.55, "emulator back", restart),
                    at(0.75, "keys rotated", stack.rotate_keys),
                )
            ]
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join(30)
            samples.append((time.monotonic() - start, read_points(reader)))
            for browser in browsers:
                browser.close()
    finally:
        uninstrument()
        provider.shutdown()
    figures = draw(samples, events, seconds, out)
    figures["responses"] = statuses
    figures["events"] = events
    return figures


def careless_tokens(stack: Demo) -> tuple[str, str, str]:
    """A real access token with one signature character changed, a real ID token, and a good
    access token for the API (the daemon's)."""
    idp = stack.idp
    config = idp.entra_config("web-app")
    with httpx.Client(verify=idp.ca_bundle) as client:
        answer = client.post(
            f"{idp.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": idp.entra_config("daemon").client_id,
                "client_secret": idp.entra_config("daemon").client_secret,
                "scope": f"{defaults.TODO_API_IDENTIFIER_URI}/.default",
            },
        )
        access = answer.json()["access_token"]
    head, payload, signature = access.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    # The web app's own ID token is for the web app, not the API: refused for its audience.
    return f"{head}.{payload}.{flipped}", client_id_token(idp, config.client_id or ""), access


def client_id_token(idp: DevIdp, client_id: str) -> str:
    """An ID token of the emulator for ``client_id`` (signed with its key), via a sign-in."""
    import msal

    from entra_ciam.devidp.testing import sign_in
    from entra_ciam.http import MsalHttpClient

    config = idp.entra_config("web-app")
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=config.client_secret,
        oidc_authority=config.oidc_authority,
        http_client=MsalHttpClient(idp.ca_bundle),
    )
    flow = app.initiate_auth_code_flow([], redirect_uri=config.redirect_uri)
    result = sign_in(flow["auth_uri"], email=defaults.USERS[0][0], password=defaults.USERS[0][1])
    tokens = app.acquire_token_by_auth_code_flow(flow, result.params)
    token: str = tokens["id_token"]
    return token


def rates(
    samples: list[tuple[float, Points]], metric: str, match: Callable[[dict[str, Any]], str | None]
) -> dict[str, list[tuple[float, float]]]:
    """Per-second increase of ``metric``, one line per label ``match`` gives (None: skipped)."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for (t0, before), (t1, after) in itertools.pairwise(samples):
        totals: dict[str, float] = {}
        for key, value in after.get(metric, {}).items():
            label = match(dict(key))
            if label is None:
                continue
            previous = before.get(metric, {}).get(key, 0)
            totals[label] = totals.get(label, 0) + (value - previous)
        for label, delta in totals.items():
            lines.setdefault(label, []).append((t1, delta / max(t1 - t0, 1e-9)))
    return lines


def latencies(samples: list[tuple[float, Points]]) -> dict[str, list[tuple[float, float]]]:
    """Mean token acquisition latency (ms) per interval, per source (and failures)."""
    metric = "entra_ciam.token_acquisition.duration"
    lines: dict[str, list[tuple[float, float]]] = {}
    for (_, before), (t1, after) in itertools.pairwise(samples):
        sums: dict[str, tuple[int, float]] = {}
        for key, (count, total) in after.get(metric, {}).items():
            attributes = dict(key)
            label = (
                attributes["source"]
                if attributes["outcome"] == "ok"
                else f"{attributes['outcome']} ({attributes['source']})"
            )
            old_count, old_total = before.get(metric, {}).get(key, (0, 0.0))
            n, s = sums.get(label, (0, 0.0))
            sums[label] = (n + count - old_count, s + total - old_total)
        for label, (n, s) in sums.items():
            if n:
                lines.setdefault(label, []).append((t1, 1000 * s / n))
    return lines


def draw(
    samples: list[tuple[float, Points]], events: list[tuple[float, str]], seconds: float, out: Path
) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every_5s = samples[::5] + ([samples[-1]] if (len(samples) - 1) % 5 else [])
    refusals = rates(
        every_5s,
        "entra_ciam.validations",
        lambda a: "valid" if a["outcome"] == "valid" else f"{a['outcome']}: {a.get('reason')}",
    )
    refreshes = rates(samples, "entra_ciam.key_refreshes", lambda a: f"{a['step']} {a['outcome']}")
    acquired = latencies(samples)
    figure, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(10, 10), sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 2.4]}
    )
    valid = refusals.pop("valid", [])
    bottoms: dict[float, float] = {}
    for label, points in sorted(refusals.items()):
        xs = [t for t, _ in points]
        lows = [bottoms.get(t, 0.0) for t in xs]
        heights = [rate for _, rate in points]
        top.bar(xs, heights, width=-4.6, align="edge", bottom=lows, label=label, alpha=0.85)
        for t, low, height in zip(xs, lows, heights, strict=True):
            bottoms[t] = low + height
    top.set_ylabel("tokens / s (over 5 s)")
    top.set_title("entra_ciam.validations: refused (401) by reason, unavailable (503)")
    top.legend(loc="upper left", fontsize=8, ncol=2)
    if valid:
        twin = top.twinx()
        twin.step(*zip(*valid, strict=True), where="pre", color="0.6", linewidth=1, label="valid")
        twin.set_ylabel("valid tokens / s", color="0.45")
        twin.set_ylim(bottom=0)
        twin.legend(loc="upper right", fontsize=8)
    top.set_ylim(0, 1.5 * max(bottoms.values(), default=1.0))  # room for the legend
    rows = sorted(refreshes)
    for row, label in enumerate(rows):
        shown = [(t, rate) for t, rate in refreshes[label] if rate > 0]
        if shown:
            xs = [t for t, _ in shown]
            color = "tab:red" if label.endswith("failed") else "tab:green"
            middle.scatter(xs, [row] * len(xs), marker="|", s=300, color=color)
    middle.set_yticks(range(len(rows)), rows)
    middle.set_ylim(-0.7, len(rows) - 0.3)
    middle.set_title("entra_ciam.key_refreshes: each fetch of the discovery document or the keys")
    for label, points in sorted(acquired.items()):
        style = "x" if label.startswith(("failed", "interaction")) else "-o"
        bottom.plot(*zip(*points, strict=True), style, markersize=4, label=label, linewidth=1)
    bottom.set_yscale("log")
    bottom.set_ylabel("mean latency per second (ms)")
    bottom.set_title("entra_ciam.token_acquisition.duration by source (user tokens of the web app)")
    bottom.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("seconds into the run")
    moments = dict((what, t) for t, what in events)
    stopped, back = moments.get("emulator stopped"), moments.get("emulator back")
    for axis in (top, middle, bottom):
        if stopped is not None:
            axis.axvspan(stopped, back if back is not None else seconds, color="red", alpha=0.07)
        for what in ("keys rotated", "a cold API instance starts"):
            if what in moments:
                axis.axvline(moments[what], color="purple", linestyle="--", linewidth=0.8)
    for what, when in moments.items():
        if what != "emulator back":
            bottom.annotate(
                what, (when, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                textcoords="offset points", fontsize=8, rotation=90, va="bottom",
            )  # fmt: skip
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    last = samples[-1][1]
    return {
        "plot": str(out),
        "samples": len(samples),
        "totals": {
            name: {
                " ".join(f"{k}={v}" for k, v in sorted(key)): value for key, value in series.items()
            }
            for name, series in last.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "operations.png")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    figures = run(args.seconds, args.out)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    else:
        print(json.dumps(figures["totals"], indent=2, default=str))
        print(f"responses: {figures['responses']}\nplot: {figures['plot']}")


if __name__ == "__main__":
    main()
