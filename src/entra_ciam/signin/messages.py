"""The request and response data the sign-in steps read and write: no framework types here.

Adapters turn a WSGI environ or an ASGI scope into a :class:`Request`, run a step, and send the
:class:`Response` back, so both speak the same protocol by construction.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple
from urllib.parse import parse_qsl, quote

__all__ = ["MAX_FORM_BYTES", "Request", "Response"]

# A form_post answer from Entra holds a code, a state and maybe an id token: a few KB.
MAX_FORM_BYTES = 64 * 1024
_PATH_SAFE = "/:@!$&'()*+,;=~-._"


def _pairs(encoded: str) -> tuple[tuple[str, str], ...]:
    try:
        return tuple(parse_qsl(encoded, keep_blank_values=True, max_num_fields=100))
    except ValueError:
        return ()


class Request(NamedTuple):
    """What a step needs to know about one HTTP request (immutable).

    A named tuple rather than a frozen dataclass: every request builds one, and a frozen
    dataclass sets each of its ten fields through ``object.__setattr__`` (about a fifth of what
    the sign-in middleware costs a signed-in page).

    ``path`` is the percent-decoded path inside the app (routes are matched on it) and
    ``root_path`` where the app is mounted; ``query_string``, ``cookie_header`` and ``body`` are
    raw. ``body`` is only read for a POST to the redirect route. ``origin`` and ``fetch_site`` are
    the ``Origin`` and ``Sec-Fetch-Site`` headers ("" when absent), for the cross-site check.
    """

    method: str
    path: str
    root_path: str = ""
    query_string: str = ""
    cookie_header: str = ""
    content_type: str = ""
    body: bytes = b""
    host: str = "localhost"
    origin: str = ""
    fetch_site: str = ""

    @property
    def query(self) -> tuple[tuple[str, str], ...]:
        return _pairs(self.query_string)

    @property
    def form(self) -> tuple[tuple[str, str], ...]:
        """The url-encoded form fields of a POST; nothing for other bodies or oversized ones."""
        if self.method != "POST" or len(self.body) > MAX_FORM_BYTES:
            return ()
        if self.content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return ()
        try:
            return _pairs(self.body.decode("ascii"))
        except UnicodeDecodeError:
            return ()

    @property
    def mount(self) -> str:
        """``root_path`` as a path to prepend: "" or one leading ``/``, never ``//``.

        A mount point comes from ``SCRIPT_NAME`` or ``root_path``, which a proxy header may set
        (``X-Forwarded-Prefix`` through Werkzeug's ProxyFix, gunicorn's ``SCRIPT_NAME``
        header): ``//evil.example`` put in front of a route would make ``Location:
        //evil.example/auth/signin``, another site to a browser, and ``https://evil.example``
        an absolute URL. Leading slashes are collapsed to one and a missing one is added, so
        whatever it holds, a URL built on it stays a path on this site.
        """
        root = self.root_path
        if not root:
            return ""
        if root[0] == "/" and root[1:2] != "/":  # the usual case: a well-formed mount point
            return root
        return "/" + root.lstrip("/")

    @property
    def return_path(self) -> str:
        """This request's path and query, host-relative: where to come back to after sign-in."""
        path = quote(self.mount + self.path, safe=_PATH_SAFE) or "/"
        return f"{path}?{self.query_string}" if self.query_string else path

    def with_body(self, body: bytes) -> Request:
        """This request with its body, once read (only a POST to the redirect route needs it)."""
        return self._replace(body=body)

    def url_for(self, app_path: str) -> str:
        """A host-relative URL for a path inside the app (the mount point prepended).

        ``app_path`` starts with ``/`` (a route, or the checked ``default_return_path``), and
        the mount is a path (see :attr:`mount`): the result is a same-origin path, never a
        scheme-relative or absolute URL. Characters a browser would read differently
        (backslash, controls, spaces) are percent-encoded.
        """
        return quote(self.mount + app_path, safe=_PATH_SAFE + "?%")


@dataclasses.dataclass(slots=True)
class Response:
    """Status, headers and a small body; adapters send exactly this."""

    status: int
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None
