"""Warm-up at start-up: fetch what the first request would otherwise wait for.

``AccessTokenValidator.warm_up()`` fetches discovery and keys; ``SignInMiddleware.warm_up()``
has MSAL fetch discovery. Each takes ``on_error``: ``"raise"`` (the default) stops the start
when the identity provider cannot be reached, which suits a deployment that should roll back;
``"log"`` logs ``warm_up_failed`` and lets the app start, to fetch on the first request as it
would have without a warm-up. Either way the event names what failed and never a secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Literal

from entra_ciam.errors import ConfigError
from entra_ciam.events import emit

__all__ = ["ON_ERROR", "OnError", "warm_up", "warm_up_async"]

OnError = Literal["raise", "log"]
ON_ERROR: Final = ("raise", "log")


def _check(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be 'raise' or 'log', got {on_error!r}")


def _completed(side: str, keys: Callable[[], int | None]) -> bool:
    emit("warm_up_completed", side=side, keys=keys())
    return True


def _failed(side: str, exc: Exception, on_error: str) -> bool:
    action = "stopping the start" if on_error == "raise" else "starting anyway"
    # The log is where the reason goes: a 503's own text says only "unavailable".
    reason = getattr(exc, "internal_detail", None) or str(exc)
    emit("warm_up_failed", side=side, error=str(reason)[:300], action=action)
    if on_error == "raise":
        raise exc
    return False


def warm_up(
    side: str,
    step: Callable[[], object],
    on_error: str,
    unreachable: tuple[type[Exception], ...],
    keys: Callable[[], int | None] = lambda: None,
) -> bool:
    """Run ``step``; True when it worked, False (``on_error="log"``) or the error when not."""
    _check(on_error)
    try:
        step()
    except unreachable as exc:
        return _failed(side, exc, on_error)
    return _completed(side, keys)


async def warm_up_async(
    side: str,
    step: Callable[[], Awaitable[object]],
    on_error: str,
    unreachable: tuple[type[Exception], ...],
    keys: Callable[[], int | None] = lambda: None,
) -> bool:
    """The async twin of :func:`warm_up`."""
    _check(on_error)
    try:
        await step()
    except unreachable as exc:
        return _failed(side, exc, on_error)
    return _completed(side, keys)
