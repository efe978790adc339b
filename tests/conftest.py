"""Fixtures shared by the whole suite: the local Entra emulator (``devidp``, ``devidp_module``)."""

pytest_plugins = ["entra_ciam.devidp.pytest_plugin"]
