"""pytest fixtures: ``devidp`` starts the emulator for one test, ``devidp_module`` for a module.

Register with ``pytest_plugins = ["entra_ciam.devidp.pytest_plugin"]`` in the root conftest.py.
For other registrations or lifetimes, call ``entra_ciam.devidp.testing.running_devidp`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import running_devidp

__all__ = ["devidp", "devidp_module"]


@pytest.fixture
def devidp() -> Iterator[DevIdp]:
    """The built-in tenant on free loopback ports, in test mode, with a throwaway state folder."""
    with running_devidp() as idp:
        yield idp


@pytest.fixture(scope="module")
def devidp_module() -> Iterator[DevIdp]:
    """Like ``devidp``, shared by a module's tests (they must not depend on each other's state)."""
    with running_devidp() as idp:
        yield idp
