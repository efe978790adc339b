"""The one request view and response writer of the WSGI middlewares (bearer and sign-in).

PEP 3333 hands paths over as latin-1 decoded bytes while browsers and ASGI servers use UTF-8;
both middlewares decode them here, so they route on the same text an ASGI app would see. What
they add to a request goes into the environ (one dict per request) under ``entra_ciam.*`` keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from entra_ciam.bearer import status_line

if TYPE_CHECKING:
    import contextvars
    from wsgiref.types import StartResponse, WSGIEnvironment

    from _typeshed import OptExcInfo

    from entra_ciam.requeststate import RequestState

__all__ = ["close_in", "discard", "path_info", "respond", "script_name", "status_code", "text"]


def text(environ: WSGIEnvironment, key: str) -> str:
    """``environ[key]`` as the UTF-8 text the client sent ("" when absent)."""
    raw: str = environ.get(key) or ""
    if raw.isascii():  # the usual path: the same in latin-1 and UTF-8
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def path_info(environ: WSGIEnvironment) -> str:
    """The path the app routes on."""
    return text(environ, "PATH_INFO") or "/"


def script_name(environ: WSGIEnvironment) -> str:
    """Where the app is mounted, without a trailing slash."""
    return text(environ, "SCRIPT_NAME").rstrip("/")


def respond(
    start_response: StartResponse,
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    exc_info: OptExcInfo | None = None,
    *,
    head: bool = False,
) -> list[bytes]:
    """Start the response (with a Content-Length matching ``body``) and return its body.

    ``head``: the answer to a HEAD, GET's headers without the body. A WSGI app leaves out a
    HEAD's body itself (Werkzeug's responses do); servers such as Werkzeug's development server
    send whatever they are given.
    """
    listed = [(k, v) for k, v in headers if k.lower() != "content-length"]
    listed.append(("Content-Length", str(len(body))))
    start_response(status_line(status), listed, exc_info)
    return [] if head else [body]


def status_code(status: str) -> int:
    """The code of a WSGI status line (``"200 OK"``); 500 for one that is not a status line."""
    try:
        return int(status.split(None, 1)[0])
    except (ValueError, IndexError):
        return 500


def discard(_data: bytes) -> None:
    """The ``write`` callable handed to an app whose answer a middleware replaces: what the app
    writes never goes out."""


def close_in(context: contextvars.Context, body: Iterable[bytes], state: RequestState) -> None:
    """Close the app's body in the request's context, then end the request's state (as the
    ASGI middlewares do when the app call returns): a context captured during the request, by a
    task handed to a thread pool say, no longer holds the user's session or claims."""
    try:
        close = getattr(body, "close", None)
        if close is not None:
            context.run(close)
    finally:
        state.end()
