"""Finding the bearer token in a request, shared by the WSGI and ASGI middlewares (sans-IO).

The middlewares only translate their server's request into ``method``, ``path``, the list of
``Authorization`` header values and the raw query string; every decision is made here, so both
answer the same request the same way. That includes what may go out for a CORS preflight that
passed unauthenticated (:meth:`BearerPolicy.passes_as_preflight`, :func:`preflight_answer`).
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
    "preflight_answer",
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
    through unauthenticated, since browsers never attach credentials to them. Anyone can send
    that header, though, and a view routed for ``OPTIONS`` would then serve its data to nobody
    in particular: so what the app answers to such a preflight goes out only if it is a CORS
    answer, without its body (:func:`preflight_answer`).
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
        """Whether the request passes without a token (a public path, or a CORS preflight)."""
        if self.allow_preflight and method == "OPTIONS" and has_preflight_header:
            return True
        return self._is_public_path(path)

    def passes_as_preflight(self, method: str, path: str, has_preflight_header: bool) -> bool:
        """Whether the request passes without a token only because it is a CORS preflight:
        the app's answer must then go through :func:`preflight_answer`. A public path's answer
        goes out as it is, preflight or not."""
        return (
            has_preflight_header
            and self.allow_preflight
            and method == "OPTIONS"
            and not self._is_public_path(path)
        )

    def _is_public_path(self, path: str) -> bool:
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


# Status codes whose responses carry no body and no Content-Length (RFC 9110 sections 8.6, 15).
_NO_CONTENT = frozenset((204, 304))


def preflight_answer(
    status: int, headers: Iterable[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """What goes out for a CORS preflight that passed unauthenticated, given the app's answer.

    A CORS layer in the app (Flask-CORS, Starlette's ``CORSMiddleware``, django-cors-headers)
    answers a preflight with ``Access-Control-Allow-Origin``: that answer goes out, with its
    status and headers but no body, since browsers read no body from a preflight's answer and
    the body of a view that also added CORS headers is not for an unauthenticated caller. Any
    other answer (the view itself ran: a 200 with the data, a 405, a 500 from a view that
    needed the claims) is replaced by the 401 challenge a request without a token gets, so
    the app's body never goes out. The status, headers and body are complete, Content-Length
    included (none for 204 and 304).
    """
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in ("content-length", "transfer-encoding")
    ]
    if not any(name.lower() == "access-control-allow-origin" for name, _ in kept):
        return error_response(MissingTokenError())
    if status >= 200 and status not in _NO_CONTENT:
        kept.append(("Content-Length", "0"))
    return status, kept, b""


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
