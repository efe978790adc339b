"""Optional dependencies: say which extra to install instead of failing with a bare ImportError.

The core installs only what validation and sign-in use; the emulator, the demo, each framework
and Redis come with an extra (``pip install "entra-ciam[emulator]"``). A module that needs one
calls :func:`require` before using it, so the user reads the install command, not a traceback.
``require`` imports the modules: the caller uses them next anyway, and a module that is present
but cannot be imported is as missing as one that is absent.
"""

from __future__ import annotations

import importlib

from entra_ciam.errors import EntraCiamError

__all__ = ["MissingExtraError", "require"]

# import name -> the name pip knows it by, where they differ
_DISTRIBUTIONS = {"jwt": "PyJWT", "rest_framework": "djangorestframework"}


class MissingExtraError(EntraCiamError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` to run."""

    def __init__(self, purpose: str, extra: str, missing: list[str]) -> None:
        self.extra = extra
        self.missing = tuple(missing)
        super().__init__(
            f"{purpose} needs {', '.join(_DISTRIBUTIONS.get(m, m) for m in missing)}, which entra-ciam installs with its "
            f'{extra!r} extra: pip install "entra-ciam[{extra}]"',
            name=missing[0],
        )


def require(extra: str, *modules: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` unless every module in ``modules`` can be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(purpose, extra, missing)
