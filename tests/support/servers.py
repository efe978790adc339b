"""Real servers in subprocesses for the framework tests: Django's runserver, gunicorn, uvicorn,
hypercorn. Each listens on a free loopback port and is stopped by the test that started it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from tests.support.todo_api import ROOT, free_port, stop_process

DJANGO_API = "tests.support.django_site.settings"
DJANGO_WEB = "tests.support.django_site.settings_web"


def command(server: str, target: str, port: int) -> list[str]:
    """The argv that serves ``target`` (a settings module for runserver, else ``mod:app``)."""
    py = sys.executable
    bind = f"127.0.0.1:{port}"
    if server == "runserver":
        return [py, "-m", "django", "runserver", "--noreload", "--settings", target, bind]
    if server == "gunicorn":
        return [py, "-m", "gunicorn", "--workers", "1", "--bind", bind, target]
    if server == "uvicorn":
        return [py, "-m", "uvicorn", "--port", str(port), "--lifespan", "auto", *target.split()]
    if server == "hypercorn":
        return [py, "-m", "hypercorn", "--bind", bind, target]
    raise ValueError(server)


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """Ours less anyone's ENTRA_*/DJANGO_* settings, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "DJANGO_"))}
    full.update(env)
    full["PYTHONUNBUFFERED"] = "1"
    return full


@contextlib.contextmanager
def running(
    argv_for_port: Sequence[str] | None = None,
    *,
    server: str = "",
    target: str = "",
    env: Mapping[str, str],
    log: Path,
    health: str = "/healthz",
    port: int | None = None,
) -> Iterator[str]:
    """Start the server, wait until ``health`` answers 200, yield its base URL, stop it."""
    port = port or free_port()
    argv = list(argv_for_port) if argv_for_port else command(server, target, port)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=clean_env(env), stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + health, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                said = log.read_bytes()[-4000:].decode(errors="replace")
                raise AssertionError(f"{argv} did not start:\n{said}")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(proc)


def exit_of(
    server: str, target: str, env: Mapping[str, str], log: Path, timeout: float = 40
) -> tuple[int | None, str]:
    """Start a server that must refuse to start: its exit code and output; None when it
    answered HTTP instead (it started)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command(server, target, port), cwd=ROOT, env=clean_env(env), stdout=out, stderr=out
        )
    code: int | None = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break  # it answers: it started
            time.sleep(0.2)
    finally:
        stop_process(proc)
    return code, log.read_text(errors="replace")
