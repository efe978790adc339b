"""Fixtures shared by the whole suite: the local Entra emulator (``devidp``, ``devidp_module``) and
``served``, a loopback discovery/JWKS stub with its token factory, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.tokens import TokenFactory

pytest_plugins = ["entra_ciam.devidp.pytest_plugin"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TokenFactory, OIDCStub]]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        yield factory, stub
