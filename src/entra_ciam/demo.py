"""``entra-ciam demo``: the emulator, the todo API and the Flask web app on loopback, one command.

The emulator runs in this process; the API (``examples/starlette_api``) and the web app
(``examples/flask_todo``) run as child processes exactly as a person would start them, configured
only through ``ENTRA_*`` variables, so the demo exercises the same code paths as a real tenant.
The wheel carries both apps (``entra_ciam/_examples/``), so the demo runs from an installed
package; an editable install runs the clone's ``examples/``. Each part must answer its health
check before the next starts; Ctrl-C or SIGTERM stops them all. State (the emulator's keys and
signed-up users, the todo database, sessions) lives in ``.entra-ciam/`` in the working directory
so a restart keeps it; delete the folder to start over.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

import httpx

from entra_ciam import _extras
from entra_ciam.devidp import DevIdp, DevIdpError, RegistrationError, Registrations, defaults
from entra_ciam.devidp.cli import port_number
from entra_ciam.devidp.registrations import default_mapping
from entra_ciam.devidp.state import StateError
from entra_ciam.errors import EntraCiamError
from entra_ciam.sessions import generate_key

__all__ = [
    "DemoError",
    "Ports",
    "add_parser",
    "examples_root",
    "run",
    "wait_until_healthy",
]

HOST = "127.0.0.1"
HEALTH_TIMEOUT = 30.0
LINGER_TIMEOUT = 65.0  # Linux keeps a closed connection in TIME_WAIT for 60 s
STOP_TIMEOUT = 10.0
STATE_DIR_NAME = ".entra-ciam"
_EXAMPLES = ("examples/flask_todo/__init__.py", "examples/starlette_api/__init__.py")
# What the two apps import beyond the core: the `emulator` extra brings them (with PyJWT).
_APP_MODULES = ("flask", "werkzeug", "starlette", "uvicorn")


class DemoError(EntraCiamError, RuntimeError):
    """The demo cannot start or a part of it stopped; the message says what to do."""


@dataclasses.dataclass(frozen=True, slots=True)
class Ports:
    web: int = 3000
    api: int = 5000
    idp: int = 8443  # the emulator's https back channel
    idp_pages: int = 8080  # the emulator's sign-in pages

    def named(self) -> dict[str, tuple[int, str]]:
        return {
            "web app": (self.web, "--port"),
            "todo API": (self.api, "--api-port"),
            "emulator": (self.idp, "--idp-port"),
            "emulator pages": (self.idp_pages, "--idp-pages-port"),
        }


# -- the command line -------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    defaults = Ports()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the emulator, the todo API and the Flask web app together on 127.0.0.1",
        description=(
            "Start the local Entra External ID emulator, the todo API (examples/starlette_api) "
            "and the web app (examples/flask_todo) on loopback, wait until each is healthy, and "
            "print the URL to open and the test users. Ctrl-C stops everything."
        ),
    )
    # port_number: 0-65535, or argparse's usage error (exit 2) rather than a traceback at bind.
    parser.add_argument(
        "--port", type=port_number, default=defaults.web, help="web app port (3000)"
    )
    parser.add_argument(
        "--api-port", type=port_number, default=defaults.api, help="todo API port (5000)"
    )
    parser.add_argument(
        "--idp-port", type=port_number, default=defaults.idp, help="emulator https port (8443)"
    )
    parser.add_argument(
        "--idp-pages-port",
        type=port_number,
        default=defaults.idp_pages,
        help="emulator sign-in pages port (8080)",
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        help=f"where the demo keeps its state (default: {STATE_DIR_NAME}/ here)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ports = Ports(args.port, args.api_port, args.idp_port, args.idp_pages_port)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        try:
            _extras.require(
                "emulator", *_APP_MODULES, purpose="The demo (a Flask web app and a Starlette API)"
            )
        except _extras.MissingExtraError as exc:
            raise DemoError(str(exc)) from None
        root = examples_root()
        state = Path(args.state_dir) if args.state_dir else Path.cwd() / STATE_DIR_NAME
        with Demo(root, state.resolve(), ports, out=out) as demo:
            demo.start(stop)
            if not stop.is_set():
                print(demo.banner(), file=out, flush=True)
                failed = demo.watch(stop)
                if failed:
                    print(f"entra-ciam demo: {failed}; stopping everything.", file=out, flush=True)
                    status = 1
        print("entra-ciam demo: stopped.", file=out, flush=True)
    except DemoError as exc:
        print(f"entra-ciam demo: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


# -- finding the examples ---------------------------------------------------------------------


def examples_root(package_dir: Path | None = None) -> Path:
    """The folder holding the ``examples/`` package the demo runs.

    The wheel carries the two apps in ``entra_ciam/_examples/``; an editable install has none
    there and runs the clone's ``examples/`` beside ``src/``. Nothing is looked up from the
    working directory, so the demo runs the same apps wherever it is started.
    """
    here = package_dir or Path(__file__).resolve().parent
    for candidate in (here / "_examples", here.parent.parent):
        if all((candidate / name).is_file() for name in _EXAMPLES):
            return candidate
    raise DemoError(
        f"this installation of entra-ciam ({here}) lacks the demo's apps "
        "(entra_ciam/_examples/); reinstall it: pip install --force-reinstall "
        '"entra-ciam[emulator]"'
    )


# -- waiting for health -----------------------------------------------------------------------


def wait_until_healthy(
    url: str,
    *,
    timeout: float = HEALTH_TIMEOUT,
    verify: str | bool = True,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took.

    Raises DemoError as soon as ``alive()`` turns false (the process died: no point waiting) or
    when ``timeout`` passes, naming the last thing seen. Proxy variables are ignored: every part
    of the demo is on loopback.
    """
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer"
    trust = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    with httpx.Client(verify=trust, timeout=2.0, trust_env=False) as client:
        while True:
            if alive is not None and not alive():
                raise DemoError(f"{url}: the process exited before it answered")
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    return time.monotonic() - started
                last = f"HTTP {response.status_code}"
            now = time.monotonic()
            if now >= deadline:
                raise DemoError(f"{url} was not healthy after {timeout:.0f} s (last: {last})")
            time.sleep(min(interval, deadline - now))


def check_ports_free(
    ports: Ports, host: str = HOST, *, linger: float = LINGER_TIMEOUT, out: TextIO | None = None
) -> None:
    """One clear error for every port a server already listens on, before anything starts.

    Each port is probed the way the servers bind theirs (``SO_REUSEADDR``, bind, listen), so a
    port the servers can take is never refused. A port that cannot be bound although nothing
    accepts connections on it is held by closed connections only (TIME_WAIT, left by a program
    that bound it without ``SO_REUSEADDR``): the kernel frees it within a minute, so the demo
    waits for it, saying so, instead of refusing to start.
    """
    busy: list[str] = []
    lingering: dict[int, str] = {}
    for name, (port, option) in ports.named().items():
        if _bindable(host, port):
            continue
        where = f"{host}:{port} ({name}; pass {option} with another port)"
        if _accepting(host, port):
            busy.append(where)
        else:
            lingering[port] = where
    if busy:
        raise DemoError("these ports are in use: " + ", ".join(busy))
    if not lingering:
        return
    print(
        "entra-ciam demo: waiting for closed connections to release "
        + ", ".join(f"{host}:{port}" for port in lingering)
        + f" (TIME_WAIT; at most {linger:.0f} s)",
        file=out or sys.stdout,
        flush=True,
    )
    deadline = time.monotonic() + linger
    while True:
        lingering = {p: w for p, w in lingering.items() if not _bindable(host, p)}
        if not lingering:
            return
        if time.monotonic() >= deadline:
            raise DemoError(
                "these ports are still held by closed connections: " + ", ".join(lingering.values())
            )
        time.sleep(0.2)


def _bindable(host: str, port: int) -> bool:
    """Whether a server binding like ours (``SO_REUSEADDR``) could listen on ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def _accepting(host: str, port: int) -> bool:
    """Whether something listens on ``port`` (a live server, not a lingering connection)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# -- child processes --------------------------------------------------------------------------


class Child:
    """A ``python -m`` child whose output is copied to ours, each line prefixed with its name."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, out: TextIO
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our examples
            [sys.executable, *argv],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=_copy_lines, args=(self.process.stdout, out, f"[{name}] "), daemon=True
        )
        self._pump.start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._pump.join(timeout)


def _copy_lines(stream: IO[bytes], out: TextIO, prefix: str) -> None:
    with contextlib.suppress(ValueError, OSError):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            print(prefix + line, file=out, flush=True)
    with contextlib.suppress(OSError):
        stream.close()


def _child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """Our environment without anyone's tenant settings, plus the demo's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENTRA_", "TODO_API_", "TODO_WEB_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


# -- the demo ---------------------------------------------------------------------------------


class Demo:
    """The three parts, started in order and stopped in reverse order."""

    def __init__(self, root: Path, state: Path, ports: Ports, *, out: TextIO) -> None:
        self.root = root
        self.state = state
        self.ports = ports
        self.out = out
        self.web_url = f"http://{HOST}:{ports.web}"
        self.api_url = f"http://{HOST}:{ports.api}"
        self.session_secret = ""
        self.idp: DevIdp | None = None
        self.children: list[Child] = []
        self._stop = threading.Event()

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, stop: threading.Event) -> None:
        """Start each part and wait until it is healthy; return early once ``stop`` is set."""
        self._stop = stop
        check_ports_free(self.ports, out=self.out)
        self._prepare_state()
        steps: list[Callable[[], None]] = [self._start_idp, self._start_api, self._start_web]
        for step in steps:
            if stop.is_set():
                return
            try:
                step()
            except DemoError:
                if stop.is_set():  # Ctrl-C while waiting: not a failure
                    return
                raise

    def watch(self, stop: threading.Event) -> str | None:
        """Block until ``stop`` is set (None) or a child exits on its own (what happened)."""
        while not stop.wait(0.2):
            for child in self.children:
                code = child.process.poll()
                if code is not None and not stop.wait(0.5):  # Ctrl-C reaches children too
                    return f"the {child.name} exited with status {code}"
        return None

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children = []
        if self.idp is not None:
            self.idp.stop()
            self.idp = None

    # -- parts ------------------------------------------------------------------------------

    def _prepare_state(self) -> None:
        try:
            self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
            secret_file = self.state / "session-secret"
            if not secret_file.is_file():
                fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(generate_key())
            self.session_secret = secret_file.read_text().strip()
        except OSError as exc:
            raise DemoError(
                f"cannot use the state folder {self.state}: {exc.strerror or exc}; "
                "pass --state-dir with a writable folder"
            ) from exc

    def _start_idp(self) -> None:
        redirect = f"{self.web_url}/auth/redirect"
        logout = f"{self.web_url}/"
        mapping = default_mapping()
        web = next(app for app in mapping["apps"] if app["name"] == "web-app")
        extra_redirects = [] if redirect in web["redirect_uris"] else [redirect]
        extra_logouts = [] if logout in web["post_logout_redirect_uris"] else [logout]
        try:
            registrations = Registrations.from_mapping(
                default_mapping(
                    extra_redirect_uris=extra_redirects,
                    extra_post_logout_redirect_uris=extra_logouts,
                )
            )
            idp = DevIdp(
                registrations,
                state_dir=self.state / "dev-idp",
                host=HOST,
                port=self.ports.idp,
                pages_port=self.ports.idp_pages,
                announce=lambda line: print(line, file=self.out, flush=True),
            )
            idp.start()
        except (DevIdpError, RegistrationError, StateError) as exc:
            raise DemoError(f"the emulator cannot start: {exc}") from exc
        self.idp = idp
        wait_until_healthy(idp.metadata_url, verify=idp.ca_bundle)

    def _running_idp(self) -> DevIdp:
        if self.idp is None:
            raise DemoError("the emulator is not running")
        return self.idp

    def _start_api(self) -> None:
        idp = self._running_idp()
        env = _child_env(
            {
                "ENTRA_AUTHORITY": idp.authority,
                "ENTRA_API_CLIENT_ID": defaults.TODO_API_CLIENT_ID,
                "ENTRA_CA_BUNDLE": idp.ca_bundle,
                "TODO_API_DB": str(self.state / "todo.sqlite3"),
            }
        )
        argv = ["-m", "examples.starlette_api", "--host", HOST, "--port", str(self.ports.api)]
        self._start_child("todo API", argv, env, f"{self.api_url}/healthz")

    def _start_web(self) -> None:
        idp = self._running_idp()
        web = idp.entra_config("web-app")
        env = _child_env(
            {
                "ENTRA_AUTHORITY": web.authority,
                "ENTRA_CLIENT_ID": str(web.client_id),
                "ENTRA_CLIENT_SECRET": str(web.client_secret),
                "ENTRA_API_CLIENT_ID": str(web.api_client_id),
                "ENTRA_CA_BUNDLE": idp.ca_bundle,
                "ENTRA_REDIRECT_URI": f"{self.web_url}/auth/redirect",
                "ENTRA_POST_LOGOUT_REDIRECT_URI": f"{self.web_url}/",
                "ENTRA_SESSION_SECRET": self.session_secret,
                "ENTRA_SESSION_STORE": f"sqlite://{self.state / 'sessions.sqlite3'}",
                "TODO_API_BASE_URL": self.api_url,
            }
        )
        argv = ["-m", "examples.flask_todo", "--host", HOST, "--port", str(self.ports.web)]
        self._start_child("web app", argv, env, f"{self.web_url}/healthz")

    def _start_child(self, name: str, argv: list[str], env: dict[str, str], health: str) -> None:
        child = Child(name, argv, env, self.root, self.out)
        self.children.append(child)
        try:
            wait_until_healthy(health, alive=lambda: child.alive() and not self._stop.is_set())
        except DemoError as exc:
            raise DemoError(f"the {name} did not start ({exc}); its output is above") from exc

    def banner(self) -> str:
        idp = self._running_idp()
        users = [f"{email} / {password}" for email, password, _name in defaults.USERS]
        return "\n".join(
            [
                "",
                "entra-ciam demo is running: a Flask web app calling a todo API, with sign-in by a",
                "local Microsoft Entra External ID emulator.",
                "",
                f"  Open        {self.web_url}/",
                f"  Sign in as  {users[0]}",
                *(f"          or  {u}" for u in users[1:]),
                '  Sign up     choose "Create one" on the sign-in page; the one-time passcode',
                "              is printed here, in this console",
                "",
                f"  Web app     {self.web_url}/            (examples/flask_todo)",
                f"  Todo API    {self.api_url}/api/todolist   (examples/starlette_api)",
                f"  Emulator    {idp.authority}",
                f"  Sign-in     {idp.pages_url}/",
                f"  State       {self.state}  (delete it to start over)",
                "",
                "Press Ctrl-C to stop.",
                "",
            ]
        )
