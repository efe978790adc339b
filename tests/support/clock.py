"""A clock the test moves by hand, for code that takes ``clock=`` (seconds, as a float)."""

from __future__ import annotations


class Clock:
    """Reads ``now``; a test moves it (``clock.now += 60``) instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
