"""Reading and checking request bodies: every malformed input becomes a 400 with a reason."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DESCRIPTION",
    "BadRequest",
    "description_of",
    "owner_of",
    "parse_json_object",
    "read_json",
]

MAX_DESCRIPTION = 500
MAX_BODY_BYTES = 16 * 1024
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class BadRequest(Exception):
    """The client sent something we cannot accept; ``str(exc)`` is the reason shown to it."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.status_code = status_code


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object, read up to ``MAX_BODY_BYTES`` so a huge body cannot pile up."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
        chunks.append(chunk)
    return parse_json_object(b"".join(chunks))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body (at most ``MAX_BODY_BYTES``) as a JSON object, or the reason it is not."""
    if not raw.strip():
        raise BadRequest('the body must be a JSON object such as {"description": "Buy milk"}')
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(data).__name__}")
    return data


def _is_text(value: str) -> bool:
    # json.loads accepts lone surrogates ("\ud800") that no UTF-8 database can store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def description_of(data: dict[str, Any]) -> str:
    """The trimmed description: required, a string, 1 to ``MAX_DESCRIPTION`` characters."""
    if "description" not in data or data["description"] is None:
        raise BadRequest("description is required")
    value = data["description"]
    if not isinstance(value, str):
        raise BadRequest(f"description must be a string, got {type(value).__name__}")
    if not _is_text(value):
        raise BadRequest("description is not valid Unicode text")
    value = value.strip()
    if not value:
        raise BadRequest("description must not be empty")
    if len(value) > MAX_DESCRIPTION:
        raise BadRequest(
            f"description is {len(value)} characters long; at most {MAX_DESCRIPTION} are allowed"
        )
    return value


def owner_of(data: dict[str, Any]) -> str | None:
    """The ``owner`` an app names (a user's object id), lower-cased; None when absent."""
    if data.get("owner") is None:
        return None
    value = data["owner"]
    if not isinstance(value, str):
        raise BadRequest(f"owner must be a string, got {type(value).__name__}")
    value = value.strip()
    if not _GUID_RE.match(value):
        raise BadRequest("owner must be the user's object id (oid), a GUID")
    return value.lower()
