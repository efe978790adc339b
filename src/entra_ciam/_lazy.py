"""Lazy exports for a package's ``__init__`` (PEP 562), so importing a name loads only its module.

A package lists ``name -> module`` and gets the module-level ``__getattr__`` and ``__dir__``. Type
checkers see the names through ``if TYPE_CHECKING:`` imports instead, and the package defines
``__getattr__`` only outside type checking, so a misspelt name is still a type error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    namespace: dict[str, Any], names: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``."""
    package = namespace["__name__"]
    listed = frozenset(public)

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *listed})

    return __getattr__, __dir__
