"""``entra-ciam demo``: health checks, port probing, finding its apps, and the whole command.

The command runs for real: the emulator, the todo API and the web app on free loopback ports, a
cookie-keeping HTTP client signing in the way a person would. ``tests/test_package.py`` runs it
once more from a wheel installed in a fresh virtual environment.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from entra_ciam.demo import (
    DemoError,
    Ports,
    check_ports_free,
    examples_root,
    wait_until_healthy,
)
from tests.support.demo_run import run_demo_and_use_it
from tests.support.todo_api import free_port, serving

ROOT = Path(__file__).resolve().parents[1]


# -- the demo command ---------------------------------------------------------------------------


class Flaky:
    """A loopback server answering 503 ``failures`` times, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hits = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.hits += 1
        status = 503 if self.hits <= self.failures else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_wait_until_healthy_polls_until_200() -> None:
    flaky = Flaky(failures=3)
    with serving(flaky) as base:
        wait_until_healthy(f"{base}/healthz", timeout=10, interval=0.01)
    assert flaky.hits == 4


def test_wait_until_healthy_gives_up_at_once_when_the_process_died() -> None:
    started = time.monotonic()
    with pytest.raises(DemoError, match="exited"):
        wait_until_healthy(
            f"http://127.0.0.1:{free_port()}/healthz", timeout=30, alive=lambda: False
        )
    assert time.monotonic() - started < 5


def test_wait_until_healthy_times_out_naming_the_url_and_what_it_saw() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    with pytest.raises(DemoError) as caught:
        wait_until_healthy(url, timeout=0.3, interval=0.05)
    assert url in str(caught.value) and "ConnectError" in str(caught.value)
    with serving(Flaky(failures=10_000)) as base, pytest.raises(DemoError, match="HTTP 503"):
        wait_until_healthy(f"{base}/healthz", timeout=0.3, interval=0.05)


def test_busy_ports_are_named_with_the_option_to_change_them() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = Ports(web=port, api=free_port(), idp=free_port(), idp_pages=free_port())
        with pytest.raises(DemoError, match=rf"127\.0\.0\.1:{port} \(web app; pass --port"):
            check_ports_free(ports)


def _all_free_but(port: int) -> Ports:
    return Ports(web=port, api=free_port(), idp=free_port(), idp_pages=free_port())


def test_a_port_left_in_time_wait_by_a_server_like_ours_is_free() -> None:
    """A closed connection of a server that bound with SO_REUSEADDR never blocks the demo."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: it keeps the TIME_WAIT
        client.close()
    check_ports_free(_all_free_but(port), linger=0)


def test_a_port_held_without_a_listener_is_waited_for_then_taken() -> None:
    """Bound without SO_REUSEADDR and not listening, as a TIME_WAIT socket is: nothing answers
    on it, so the demo says it waits, and starts once the port is released."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    threading.Timer(0.5, holder.close).start()
    said = io.StringIO()
    started = time.monotonic()
    check_ports_free(_all_free_but(port), linger=30, out=said)
    assert time.monotonic() - started < 25
    assert f"waiting for closed connections to release 127.0.0.1:{port}" in said.getvalue()


def test_a_port_that_stays_held_is_named_after_the_wait() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(
            DemoError, match=rf"still held by closed connections: 127\.0\.0\.1:{port}"
        ):
            check_ports_free(_all_free_but(port), linger=0.3, out=io.StringIO())


def test_the_apps_are_the_clones_in_an_editable_install() -> None:
    assert examples_root() == ROOT  # this suite runs from an editable install of the clone


def test_the_apps_carried_by_the_wheel_come_first(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "entra_ciam"
    for name in ("flask_todo", "starlette_api"):
        app = package / "_examples" / "examples" / name
        app.mkdir(parents=True)
        (app / "__init__.py").write_text("")
    assert examples_root(package) == package / "_examples"


def test_an_installation_without_the_apps_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r'pip install --force-reinstall "entra-ciam\[emulator\]"'):
        examples_root(tmp_path / "site-packages" / "entra_ciam")


def test_demo_command_starts_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # cwd is not the checkout: the demo finds its apps by itself, and keeps its state in
    # ./.entra-ciam (gitignored in the clone), never in the package.
    run_demo_and_use_it([sys.executable, "-m", "entra_ciam.cli"], tmp_path)
    assert (tmp_path / ".entra-ciam" / "session-secret").is_file()
