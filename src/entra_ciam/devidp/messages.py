"""Plain request and response values, so every handler is a function of data, not of sockets."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

__all__ = ["Request", "Response", "html", "json_response", "redirect", "with_query"]

NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    target: str = ""  # the request target as sent: path and query string

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> Request:
        path, _, query = target.partition("?")
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
            target=target,
        )

    def form(self) -> dict[str, list[str]]:
        """The urlencoded body; empty for any other content type."""
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}
        return parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def cookie(self, name: str) -> str | None:
        """One cookie's value. Parsed leniently: apps on the same loopback host share cookies
        with the emulator, and one odd cookie of theirs must not hide ours."""
        for header in self.headers.get("cookie", "").split(";"):
            key, sep, value = header.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"') or None
        return None


@dataclasses.dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""


def json_response(
    data: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), *NO_STORE, *headers],
        body,
    )


def html(body: str, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(
        status,
        [("Content-Type", "text/html; charset=utf-8"), *NO_STORE, *headers],
        body.encode("utf-8"),
    )


def redirect(
    location: str, headers: Sequence[tuple[str, str]] = (), *, status: int = 302
) -> Response:
    return Response(status, [("Location", location), *NO_STORE, *headers])


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Append ``params`` to ``url``, keeping any query it already has."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)
