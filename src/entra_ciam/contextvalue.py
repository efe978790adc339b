"""A ContextVar set for one ``with`` block (one request), then restored: the middlewares' one way.

A class rather than a generator-based context manager, because it runs on every request.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Generic, TypeVar

__all__ = ["bound"]

T = TypeVar("T")


class bound(Generic[T]):  # lower case: it reads as a function, ``with bound(var, value):``
    """``var`` holds ``value`` inside the block; afterwards what it held before."""

    __slots__ = ("_token", "_value", "_var")

    def __init__(self, var: ContextVar[T], value: T) -> None:
        self._var = var
        self._value = value

    def __enter__(self) -> T:
        self._token: Token[T] = self._var.set(self._value)
        return self._value

    def __exit__(self, *exc: object) -> None:
        self._var.reset(self._token)
