"""One ASGI request driven in-process: what tests that call an ASGI app directly share.

Tests that cross HTTP use real servers (``tests/support/servers.py``); these drive the ASGI
interface itself, where a server would, to see exactly the messages an app sends.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


def http_scope(
    path: str = "/", *, root_path: str = "", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    """A GET's scope as a server builds it, with no query string."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": headers or [],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }


async def call_asgi(app: Any, scope: dict[str, Any]) -> list[Message]:
    """The messages ``app`` sends for one request with an empty body, in order."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def response_of(sent: list[Message]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (decoded) and whole body of the messages ``call_asgi`` returned."""
    start = sent[0]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())]
    body = b"".join(m.get("body", b"") for m in sent[1:] if m["type"] == "http.response.body")
    return start["status"], headers, body
