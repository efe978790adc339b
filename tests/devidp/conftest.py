"""The emulator's fixtures, for this folder (the root conftest may register the plugin for all)."""

from entra_ciam.devidp.pytest_plugin import devidp, devidp_module

__all__ = ["devidp", "devidp_module"]
