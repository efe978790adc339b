"""Fixtures shared by the whole suite: the local Entra emulator (``devidp``, ``devidp_module``) and
``served``, a loopback discovery/JWKS stub with its token factory, one per test module; and a
check that the suite leaves nothing on the demo's ports."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

from tests.support.demo_ports import sockets_on_demo_ports
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.tokens import TokenFactory

pytest_plugins = ["entra_ciam.devidp.pytest_plugin"]


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
