"""Fixtures shared by the whole suite: the local Entra emulator (``devidp``, ``devidp_module``) and
``served``, a loopback discovery/JWKS stub with its token factory, one per test module; a check
that the suite leaves nothing on the demo's ports; and Ctrl-C restored for the servers it starts."""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Iterator

import pytest

from tests.support.demo_ports import sockets_on_demo_ports
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.tokens import TokenFactory

pytest_plugins = ["entra_ciam.devidp.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    """Several tests press Ctrl-C on a server they started (SIGINT: the emulator, the demo, an
    app under uvicorn) and expect it to stop. A suite started in the background by a shell
    without job control (``make test &``, ``nohup``) inherits SIGINT ignored, and so would every
    server it starts, which then never stops. A handler here is reset to the default in each
    child at exec, where an ignored signal would have stayed ignored."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TokenFactory, OIDCStub]]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        yield factory, stub


@pytest.fixture(scope="session", autouse=True)
def demo_ports_left_free() -> Iterator[None]:
    """``make demo`` after ``make test`` finds its ports free: every test uses ports of its own.

    Sockets already there when the suite started are not ours. In CI (a machine of its own) a new
    one fails the run; elsewhere someone else may be running the demo, so it is a warning.
    """
    before = sockets_on_demo_ports()
    yield
    after = sockets_on_demo_ports()
    if before is None or after is None:
        return
    left = sorted(after - before)
    if left:
        message = f"the test suite left sockets on the demo's ports: {left}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)
