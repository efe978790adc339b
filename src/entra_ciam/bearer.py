"""Finding the bearer token in a request, shared by the WSGI and ASGI middlewares (sans-IO).

The middlewares only translate their server's request into ``method``, ``path``, the list of
``Authorization`` header values and the raw query string; every decision is made here, so both
answer the same request the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl

from entra_ciam.errors import (
    AuthError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
)

if TYPE_CHECKING:
    from entra_ciam.claims import Claims

__all__ = [
    "WS_POLICY_VIOLATION",
    "AsyncTokenValidator",
    "BearerPolicy",
    "InvalidRequestError",
    "SyncTokenValidator",
    "close_reason",
    "error_response",
    "extract_token",
]

# RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Far above any Entra token (those are 1-4 KiB); the validator applies its own, smaller limit.
MAX_HEADER_CHARS = 64 * 1024


class SyncTokenValidator(Protocol):
    def validate(self, token: str) -> Claims: ...


class AsyncTokenValidator(Protocol):
    async def validate_async(self, token: str) -> Claims: ...


@dataclass(frozen=True, slots=True)
class BearerPolicy:
    """Which requests skip authentication.

    ``public_paths`` match exactly; ``public_prefixes`` match a whole path segment prefix
    (``"/static"`` matches ``/static`` and ``/static/app.js`` but not ``/statics``). Paths are the
    ones the wrapped app routes on: ``PATH_INFO`` in WSGI, ``path`` without ``root_path`` in ASGI.
    ``allow_preflight`` lets CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
    through unauthenticated, since browsers never attach credentials to them.
    """

    public_paths: frozenset[str] = frozenset()
    public_prefixes: tuple[str, ...] = ()
    allow_preflight: bool = True

    @classmethod
    def build(
        cls,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        *,
        allow_preflight: bool = True,
    ) -> BearerPolicy:
        paths = _checked_paths(public_paths, "public_paths")
        prefixes = tuple(p.rstrip("/") for p in _checked_paths(public_prefixes, "public_prefixes"))
        if "" in prefixes:
            raise ValueError(
                "public_prefixes contains '/', which would make every path public; "
                "list the public paths instead"
            )
        return cls(frozenset(paths), prefixes, allow_preflight)

    def is_public(self, method: str, path: str, has_preflight_header: bool) -> bool:
        if self.allow_preflight and method == "OPTIONS" and has_preflight_header:
            return True
        if not path.startswith("/") or _has_dot_segment(path):
            return False  # never guess what a router makes of "/public/../admin"
        if path in self.public_paths:
            return True
        return any(path == p or path.startswith(p + "/") for p in self.public_prefixes)

    def token_for(
        self,
        *,
        method: str,
        path: str,
        authorization: list[str],
        query_string: str | bytes,
        preflight: bool,
    ) -> str | None:
        """The token to validate, None when the request is public, or an AuthError."""
        if self.is_public(method, path, preflight):
            return None
        return extract_token(authorization, query_string)


def _checked_paths(paths: Iterable[str], name: str) -> list[str]:
    if isinstance(paths, str):
        raise TypeError(f"{name} must be a list of paths, not the string {paths!r}")
    out = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{name} entries must start with '/', got {path!r}")
        out.append(path)
    return out


def _has_dot_segment(path: str) -> bool:
    return any(seg in (".", "..") for seg in path.split("/")) or "//" in path


def extract_token(authorization: list[str], query_string: str | bytes = "") -> str:
    """The single bearer token of a request, or the reason there is none.

    ``authorization`` holds every ``Authorization`` header value (a server that merged repeated
    headers with commas produces one value that fails the b64token syntax below).
    """
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    if query_string and any(
        key == "access_token" for key, _ in parse_qsl(query_string, keep_blank_values=True)
    ):
        raise InvalidRequestError(
            "Tokens in the query string are not accepted; send 'Authorization: Bearer <token>'"
        )
    if not authorization:
        raise MissingTokenError()
    if len(authorization) > 1:
        raise InvalidRequestError("More than one Authorization header")
    value = authorization[0].strip()
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError()  # another scheme: answer with the Bearer challenge alone
    credentials = credentials.strip(" ")
    if not credentials:
        raise InvalidRequestError("The Authorization header has no bearer token")
    if len(credentials) > MAX_HEADER_CHARS:
        raise InvalidTokenError("The token is too large")
    if not _B64TOKEN.fullmatch(credentials):
        if " " in credentials or "," in credentials:
            raise InvalidRequestError("The Authorization header must carry exactly one token")
        raise InvalidTokenError("The token contains characters a bearer token cannot contain")
    return credentials


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def error_response(err: AuthError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body for ``err``, with Content-Length, for raw WSGI/ASGI replies."""
    body = err.body
    headers = [*err.headers, ("Content-Length", str(len(body)))]
    return err.status_code, headers, body


# RFC 6455 section 7.4.1: the endpoint received a message that violates its policy.
WS_POLICY_VIOLATION = 1008


def close_reason(err: AuthError) -> str:
    """``err``'s description cut to the 123 bytes of UTF-8 a WebSocket close frame allows."""
    return err.description.encode()[:123].decode(errors="ignore")
