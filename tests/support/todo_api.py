"""Run the todo examples for a test: the API in a uvicorn thread, or either one as ``python -m``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from entra_ciam.devidp.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any, *, tls: TlsFiles | None = None) -> Iterator[str]:
    """Run ``app`` on uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL.

    With ``tls`` (a certificate for 127.0.0.1, e.g. the emulator's) it serves https.
    """
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; with
    # proto 0 every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    certificate: dict[str, Any] = (
        {} if tls is None else {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **certificate))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def start_api_process(
    env: Mapping[str, str], db: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m examples.starlette_api`` with ``env`` added; return it once /healthz answers."""
    return start_example("examples.starlette_api", {**env, "TODO_API_DB": str(db)}, port=port)


def start_web_process(
    env: Mapping[str, str], port: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m examples.flask_todo`` on ``port``; its log (a line per request) goes to ``log``."""
    return start_example("examples.flask_todo", env, port=port, log=log)


def start_example(
    module: str,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    log: Path | None = None,
    cwd: Path = ROOT,
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <module> --port <port>`` with ``env`` added to ours, less anyone's ``ENTRA_*``
    and ``TODO_*`` settings; returned with its base URL once ``/healthz`` answers 200. It runs in
    ``cwd`` (the clone, or a folder of its own with the clone on ``PYTHONPATH``).

    Its output goes to the file ``log`` (which a chatty server cannot fill, as it can a pipe
    nobody reads), else stdout is dropped and stderr piped for the error message.
    """
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TODO_"))}
    full_env.update(env)
    full_env["PYTHONUNBUFFERED"] = "1"
    if cwd != ROOT:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", module, "--port", str(port)]
    if log is None:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    else:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            said = err if log is None else log.read_bytes()[-4000:]
            raise AssertionError(f"{module} did not start: {said.decode(errors='replace')}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, SIGKILL after 10 s; then close the pipes the process was given."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
