"""Structured log events: a fixed catalogue of names and fields, on one logger.

Operators search and alert on these, so a name and its fields are a contract: each event the
library emits is listed in :data:`EVENTS` (and in docs/operations.md), and :func:`emit` refuses a
name or a field that is not. Field values are bounded by construction: reasons come from fixed
sets, errors are short descriptions the library wrote, never a token, secret, code, cookie or a
user's id. Each record carries ``event`` and every field as attributes (for JSON formatters,
structlog or OpenTelemetry's logging handler) and reads ``name key=value ...`` as plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["EVENTS", "LOGGER_NAME", "emit"]

LOGGER_NAME: Final = "entra_ciam.events"

# name -> (level, fields). Reordering fields is harmless; renaming one is a breaking change.
EVENTS: Final[Mapping[str, tuple[int, tuple[str, ...]]]] = MappingProxyType(
    {
        # the validator
        "token_refused": (logging.INFO, ("reason", "status", "detail")),
        "metadata_unavailable": (logging.ERROR, ("step", "url", "error", "remedy")),
        "metadata_refresh_failed": (logging.WARNING, ("step", "url", "error", "remedy")),
        "keys_refreshed": (logging.INFO, ("step", "keys", "changed")),
        # start-up
        "warm_up_completed": (logging.INFO, ("side", "keys")),
        "warm_up_failed": (logging.ERROR, ("side", "error", "action")),
        # the web app
        "signin_started": (logging.INFO, ()),
        "signin_completed": (logging.INFO, ()),
        "signin_failed": (logging.WARNING, ("reason", "status")),
        "session_store_unavailable": (logging.ERROR, ("operation",)),
        "token_acquisition_failed": (logging.WARNING, ("kind", "outcome", "error")),
    }
)

_logger = logging.getLogger(LOGGER_NAME)


def emit(name: str, summary: str = "", **fields: object) -> None:
    """Log the event ``name`` at its level with exactly its catalogued fields.

    ``summary`` is a few words for people reading the text (``name: summary; key=value ...``).
    """
    level, expected = EVENTS[name]
    if fields.keys() != set(expected):
        raise ValueError(f"event {name} takes the fields {expected}, got {sorted(fields)}")
    if not _logger.isEnabledFor(level):
        return
    text = " ".join(f"{key}={_text(fields[key])}" for key in expected)
    head = f"{name}: {summary};" if summary else name
    _logger.log(level, "%s%s%s", head, " " if text else "", text, extra={"event": name, **fields})


def _text(value: object) -> str:
    """A field as plain text: one line, quoted when it holds spaces."""
    text = str(value).replace("\n", " ").replace("\r", " ")
    return repr(text) if (" " in text or not text) else text
