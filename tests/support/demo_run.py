"""Run ``entra-ciam demo`` as a person would and use it over HTTP: sign in, add an item, list.

Shared by tests/test_demo.py (the clone's editable install) and tests/test_package.py (the wheel
installed in a fresh virtual environment), so both check the same thing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from entra_ciam.demo import Ports, check_ports_free
from entra_ciam.devidp import defaults
from tests.support.todo_api import free_port
from tests.support.todo_stack import ADA, add, descriptions
from tests.support.webapps import AppBrowser

__all__ = ["Console", "console", "free_ports", "output_until", "run_demo_and_use_it"]


def free_ports() -> Ports:
    return Ports(web=free_port(), api=free_port(), idp=free_port(), idp_pages=free_port())


def _reader(stream: Any, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line.rstrip("\n"))
    lines.put("<EOF>")


def _wait_for(lines: queue.Queue[str], text: str, seen: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if text in line:
            return
        if line == "<EOF>":
            break
    raise AssertionError(f"{text!r} never appeared; output:\n" + "\n".join(seen))


@dataclasses.dataclass
class Console:
    """A command's merged output, read line by line as it runs."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[str] = dataclasses.field(default_factory=list)

    def wait_for(self, text: str, timeout: float = 90) -> str:
        """Everything printed so far, once a line holds ``text``."""
        _wait_for(self.lines, text, self.seen, timeout)
        return "\n".join(self.seen) + "\n"

    def stop(self) -> str:
        """Ctrl-C; it must exit 0. Everything it printed."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=30) == 0
        with contextlib.suppress(queue.Empty):
            while True:
                self.seen.append(self.lines.get(timeout=2))
        return "\n".join(self.seen) + "\n"


@contextlib.contextmanager
def console(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> Iterator[Console]:
    """Run ``argv`` with its output piped to a reader thread; killed if still running at exit."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    try:
        yield Console(proc, lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def output_until(
    argv: Sequence[str], text: str, *, cwd: Path, env: dict[str, str], timeout: float = 90
) -> str:
    """Start ``argv``, collect its console output until a line holds ``text``, Ctrl-C it and
    check it stops cleanly; return what it printed up to ``text``."""
    with console(argv, cwd=cwd, env=env) as running:
        output = running.wait_for(text, timeout)
        running.stop()
    return output


def run_demo_and_use_it(entra_ciam: Sequence[str], cwd: Path, state: Path | None = None) -> str:
    """Start ``<entra_ciam> demo`` in ``cwd`` on free ports, sign Ada in over HTTP, add an item and
    see it listed, then Ctrl-C it; return its console output after checking it leaked nothing
    and let go of every port. Without ``state`` the demo keeps its state where it chooses."""
    ports = free_ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TODO_"))}
    env["PYTHONUNBUFFERED"] = "1"
    command = [*entra_ciam, "demo", *(["--state-dir", str(state)] if state else [])]
    command += ["--port", str(ports.web), "--api-port", str(ports.api)]
    command += ["--idp-port", str(ports.idp), "--idp-pages-port", str(ports.idp_pages)]
    with console(command, cwd=cwd, env=env) as running:
        output = running.wait_for("Press Ctrl-C to stop.")
        web = f"http://127.0.0.1:{ports.web}"
        assert f"Open        {web}/" in output
        assert f"{ADA[0]} / {ADA[1]}" in output
        site = SimpleNamespace(
            base=web, idp=SimpleNamespace(pages_url=f"http://127.0.0.1:{ports.idp_pages}")
        )
        with AppBrowser(site) as b:  # type: ignore[arg-type]
            page = b.open("/todos")
            assert page.status_code == 200 and "Your todo list" in page.text
            assert add(b, "Demo item").status_code == 303
            assert "Demo item" in descriptions(b.get("/todos"))
            cookie = b.session_cookie()
        output = running.stop()
    assert "entra-ciam demo: stopped." in output
    assert "Traceback" not in output
    # Nothing secret reached the console: no auth code, no session cookie, no client secret.
    assert "code=" not in output
    assert cookie and cookie not in output
    assert defaults.WEB_APP_CLIENT_SECRET not in output
    state = state or cwd / ".entra-ciam"
    assert f"State       {state.resolve()}" in output
    assert (state / "todo.sqlite3").is_file() and (state / "dev-idp").is_dir()
    check_ports_free(ports, linger=0)  # everything let go of its port
    return output
