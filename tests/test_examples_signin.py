"""The two minimal web app examples, run as their README says, against the emulator and the API.

Each example runs in its own process with only ``ENTRA_*`` variables; a person signs in through
the emulator's pages and the example's page shows the todo API's answer for that person.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from entra_ciam import EntraConfig
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.todo_api import ROOT, free_port, serving, stop_process
from tests.support.webapps import ADA, AppBrowser, Stack

EXAMPLES = {
    "flask": lambda port: [sys.executable, "examples/minimal_flask.py"],
    "starlette": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.minimal_starlette:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevIdp, str, Path, int]]:
    """The emulator (knowing the examples' port) and the todo API."""
    from examples.starlette_api import create_app

    tmp = tmp_path_factory.mktemp("examples")
    port = free_port()
    with running_devidp(extra_redirect_uris=[f"http://127.0.0.1:{port}/auth/redirect"]) as idp:
        api = EntraConfig(
            authority=idp.authority,
            api_client_id=defaults.TODO_API_CLIENT_ID,
            ca_bundle=idp.ca_bundle,
        )
        with serving(create_app(api, db_path=tmp / "todo.sqlite3")) as api_base:
            yield idp, f"{api_base}/api/todolist", tmp, port


def start_example(
    name: str, idp: DevIdp, api_url: str, tmp: Path, port: int
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TODO_"))}
    env.update(
        {
            "ENTRA_AUTHORITY": idp.authority,
            "ENTRA_CLIENT_ID": defaults.WEB_APP_CLIENT_ID,
            "ENTRA_CLIENT_SECRET": defaults.WEB_APP_CLIENT_SECRET,
            "ENTRA_API_CLIENT_ID": defaults.TODO_API_CLIENT_ID,
            "ENTRA_CA_BUNDLE": idp.ca_bundle,
            "ENTRA_REDIRECT_URI": f"http://127.0.0.1:{port}/auth/redirect",
            "ENTRA_SESSION_SECRET": Fernet.generate_key().decode(),
            "ENTRA_SESSION_STORE": f"sqlite:///{tmp / (name + '-sessions.db')}",
            "TODO_API_URL": api_url,
            "PORT": str(port),
            "PYTHONPATH": str(ROOT),
        }
    )
    proc = subprocess.Popen(
        EXAMPLES[name](port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError(f"the {name} example did not start")
        time.sleep(0.05)


@pytest.mark.parametrize("name", ["flask", "starlette"])
def test_minimal_example_signs_in_and_calls_the_api(
    name: str, world: tuple[DevIdp, str, Path, int]
) -> None:
    idp, api_url, tmp, port = world
    source = ROOT / "examples" / f"minimal_{name}.py"
    assert len(source.read_text().splitlines()) < 30
    proc = start_example(name, idp, api_url, tmp, port)
    try:
        stack = Stack(idp, f"http://127.0.0.1:{port}", api_url, None, tmp)
        with AppBrowser(stack) as browser:
            page = browser.open("/")
            assert page.status_code == 200, page.text
            assert page.json() == {"user": ADA[2], "todos": []}
            assert any(hop.startswith(idp.pages_url) for hop in browser.visited)
            assert browser.get("/").json()["user"] == ADA[2]  # signed in from now on
    finally:
        stop_process(proc)
