"""Clocks a test moves by hand: for code that takes ``clock=``, and the validator's wall clock."""

from __future__ import annotations

import time

import pytest


class Clock:
    """Reads ``now``; a test moves it (``clock.now += 60``) instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at_wall_time(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """Make the validator's wall clock read ``moment`` (its ``time.time`` calls only): the time
    claims are compared with ``time.time()``, and only a fixed reading can test them to the
    second."""
    import entra_ciam.validator as validator_module

    class Moved:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def time() -> float:
            return moment

    monkeypatch.setattr(validator_module, "time", Moved)
