"""ContextVars set for one ``with`` block (one request), then restored: the middlewares' one way.

A class rather than a generator-based context manager, because it runs on every request; and
one object binds every variable a request needs (the sign-in state or the claims, and the
framework serving it), so a request pays for one enter and one exit however many there are.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

__all__ = ["Binding", "bound"]

# A ContextVar and the value it holds inside the block.
Binding = tuple[ContextVar[Any], Any]


class bound:  # lower case: it reads as a function, ``with bound((var, value)):``
    """Each ``var`` holds its ``value`` inside the block; afterwards what it held before.

    Variables are set in order and restored in reverse order, also when the block raises.
    """

    __slots__ = ("_bindings", "_tokens")

    def __init__(self, *bindings: Binding) -> None:
        self._bindings = bindings

    def __enter__(self) -> None:
        tokens: list[tuple[ContextVar[Any], Token[Any]]] = []
        for var, value in self._bindings:  # a loop, not a comprehension: no frame of its own
            tokens.append((var, var.set(value)))
        self._tokens = tokens

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)
