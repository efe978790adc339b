"""The one request view and response writer of the ASGI middlewares (bearer and sign-in).

Both read headers, the routed path and the mount point the same way and write their own
answers through :func:`send_response`, so encoding rules live here once. What they add to a
request goes into a copy of the scope (:func:`with_state`), never into the server's own dict:
the claims under ``scope["state"]["claims"]`` and the signed-in user under
``scope["state"]["user"]`` (``request.state.claims`` / ``request.state.user`` in Starlette).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from entra_ciam.asgi.types import Scope, Send

__all__ = [
    "cookie_header",
    "encode_headers",
    "header_values",
    "root_path",
    "route_path",
    "send_response",
    "with_state",
]


def header_values(scope: Scope, names: frozenset[bytes]) -> dict[bytes, list[str]]:
    """The values of the headers ``names`` (lower-case bytes), latin-1 decoded, in one pass."""
    found: dict[bytes, list[str]] = {}
    for name, value in scope.get("headers") or ():
        name = name.lower()
        if name in names:
            if name in found:
                found[name].append(value.decode("latin-1"))
            else:
                found[name] = [value.decode("latin-1")]
    return found


def cookie_header(scope: Scope) -> str:
    """The Cookie header, "" when absent; several (HTTP/2 and 3 may split it) joined with "; ".

    ``header_values`` for one header, without its dict and lists: every page of a signed-in
    user reads this, and nothing else, of the request.
    """
    found = ""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"cookie":
            text = value.decode("latin-1")
            found = f"{found}; {text}" if found else text
    return found


def root_path(scope: Scope) -> str:
    """Where the app is mounted, without a trailing slash."""
    return str(scope.get("root_path") or "").rstrip("/")


def route_path(scope: Scope, root: str | None = None) -> str:
    """The path the app routes on: ``path`` less ``root_path`` (ASGI gives both, decoded).

    ``root``: ``root_path(scope)``, when the caller has it already.
    """
    path: str = scope.get("path") or "/"
    if root is None:
        if not scope.get("root_path"):  # the usual case: not mounted
            return path
        root = root_path(scope)
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def start_message(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """``http.response.start`` with a Content-Length matching ``body``."""
    listed = [(k, v) for k, v in headers if k.lower() != "content-length"]
    listed.append(("Content-Length", str(len(body))))
    return {"type": "http.response.start", "status": status, "headers": encode_headers(listed)}


async def send_response(
    send: Send, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> None:
    await send(start_message(status, headers, body))
    await send({"type": "http.response.body", "body": body})


def with_state(scope: Scope, key: str, value: Any) -> Scope:
    """A copy of ``scope`` whose ``state`` (also copied) holds ``value`` under ``key`` as well."""
    state = scope.get("state")
    # Copied whole, then ``state`` set: ``{**scope, "state": ...}`` in one display costs a fifth
    # more (the extra key makes CPython insert every item instead of cloning the table).
    copied: dict[str, Any] = {**scope}
    copied["state"] = {**state, key: value} if state else {key: value}
    return copied
