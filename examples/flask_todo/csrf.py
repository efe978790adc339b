"""CSRF tokens for the app's forms: one per sign-in, checked on every state-changing request.

The token is an HMAC of the signed-in session's identity (the ID token's user, session and token
ids), keyed by a secret derived from ``ENTRA_SESSION_SECRET``. It needs no storage, changes at
every sign-in, and another site can neither read it (the page is same-origin) nor compute it.
``SameSite=Lax`` session cookies are the second layer; a ``Sec-Fetch-Site`` header other than
``same-origin`` (``same-site`` too: a sibling subdomain may belong to someone else) and an
``Origin`` header naming another site are refused as well (so is ``Origin: null``, sent by
sandboxed frames; our pages use ``Referrer-Policy: same-origin``, under which a browser names our
origin on our own forms).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FIELD", "CsrfError", "CsrfProtection"]

FIELD = "csrf_token"
_LABEL = b"examples.flask_todo csrf v1\x00"


class CsrfError(Exception):
    """A state-changing request without proof that it came from one of our pages."""


class CsrfProtection:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a CSRF secret is required")
        # A key of its own: the session secret itself is never used for anything but sessions.
        self._key = hashlib.sha256(_LABEL + secret.encode()).digest()

    def token_for(self, user: Mapping[str, Any]) -> str:
        """The token the signed-in ``user``'s forms carry."""
        parts = [user.get(name) for name in ("oid", "sub", "sid", "uti", "iat")]
        message = "\x1f".join("" if part is None else str(part) for part in parts)
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def check(
        self,
        user: Mapping[str, Any],
        submitted: str | None,
        *,
        origin: str | None,
        host_url: str,
        fetch_site: str | None = None,
    ) -> None:
        """Raise CsrfError unless ``submitted`` is this user's token and the origin is ours.

        ``origin`` and ``fetch_site`` are the request's ``Origin`` and ``Sec-Fetch-Site``.
        """
        if fetch_site and fetch_site.strip().lower() != "same-origin":
            raise CsrfError("the form was sent from another site")
        if origin and _origin(origin) != _origin(host_url):
            raise CsrfError("the form was sent from another site")
        if not submitted:
            raise CsrfError("the form carries no security token")
        if not hmac.compare_digest(submitted.encode(), self.token_for(user).encode()):
            raise CsrfError("the form's security token does not match your sign-in")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
