"""Errors a request can cause, each knowing its HTTP answer (RFC 6750 section 3).

Adapters never build these responses themselves: they ask the error for its status, headers and
body, so WSGI, ASGI, Flask, Starlette and FastAPI all answer the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = [
    "AuthError",
    "ConfigError",
    "EntraCiamError",
    "InsufficientScopeError",
    "InvalidRequestError",
    "InvalidTokenError",
    "MetadataUnavailableError",
    "MissingTokenError",
]

DEFAULT_REALM = "entra-ciam"

# RFC 6750 section 3: error_description and scope use a restricted ASCII set (no '"' or '\\').
_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def _quoted(value: str) -> str:
    return _UNSAFE.sub("?", value)[:300]


class EntraCiamError(Exception):
    """The root of every exception entra-ciam raises: ``except EntraCiamError`` catches them all.

    Some also derive from the built-in a caller would expect (``ValueError`` for bad input).
    Where they are defined, and what answers them::

        EntraCiamError
        ├── ConfigError (ValueError)             a setting is missing or wrong: stop at start
        ├── AuthError                            a request's answer: status, RFC 6750 headers, body
        │   ├── MissingTokenError                401, bare challenge
        │   ├── InvalidTokenError                401 invalid_token
        │   ├── InvalidRequestError              401 invalid_request
        │   ├── InsufficientScopeError           403 insufficient_scope, the accepted scope
        │   └── MetadataUnavailableError         503 + Retry-After
        ├── FetchError                           http: discovery/keys fetch failed (logged)
        │   └── TokenEndpointThrottled           signin.throttle: Entra asked to wait
        ├── NetworkNeeded                        signin.throttle: (internal) a cache-only try
        ├── InteractionRequiredError             signin.errors: send the user through sign-in
        ├── TokenAcquisitionError                signin.errors: Entra refused (502/503/401)
        ├── IdentityProviderUnavailableError     signin.msal_app: Entra unreachable (503 page)
        ├── SessionStoreUnavailableError         sessions.base: store down (503 page)
        ├── LeaseTimeoutError                    sessions.manager: a session stayed locked
        ├── SessionEndedError                    signin.context: the session ended meanwhile
        ├── UnsafeReturnPathError (ValueError)   signin.returnpath: not a same-origin path
        ├── IdTokenError (ValueError)            signin.idtoken: ID token refused (400 page)
        ├── AuthResponseError (ValueError)       signin.authresponse: a response field too big
        ├── FlowTooLargeError (ValueError)       signin.flowcookie: a flow too big for a cookie
        ├── SignInNotConfiguredError (RuntimeError)  signin.errors: no sign-in middleware
        ├── MissingExtraError (ImportError)      _extras: an optional dependency is missing
        └── DemoError (RuntimeError)             demo: the demo cannot start

    The framework integrations raise subclasses that are also their framework's own HTTP
    exception (Werkzeug's, Starlette's, DRF's), so the framework answers them by itself.
    """


class ConfigError(EntraCiamError, ValueError):
    """A setting is missing or wrong; the message names it and shows a valid example."""


class AuthError(EntraCiamError):
    """Base of every error validation or authorization can raise.

    ``status_code`` is 401, 403 or 503; ``error`` is the RFC 6750 code (or None when the request
    carried no token); ``www_authenticate`` is the full header value, or None.
    """

    status_code: int = 401
    error: str | None = None

    def __init__(self, description: str, *, realm: str = DEFAULT_REALM) -> None:
        super().__init__(description)
        self.description = description
        self.realm = realm

    def _challenge_params(self) -> list[tuple[str, str]]:
        params = [("realm", self.realm)]
        if self.error is not None:
            params.append(("error", self.error))
            params.append(("error_description", self.description))
        return params

    @property
    def www_authenticate(self) -> str | None:
        params = ", ".join(f'{k}="{_quoted(v)}"' for k, v in self._challenge_params())
        return f"Bearer {params}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Response headers for this error, ready for any framework."""
        out = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if self.www_authenticate is not None:
            out.append(("WWW-Authenticate", self.www_authenticate))
        return out

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.error or "unauthorized", "error_description": self.description}
        return body

    @property
    def body(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class MissingTokenError(AuthError):
    """The request carried no bearer token: 401 with a bare challenge (RFC 6750 section 3.1)."""

    status_code = 401
    error = None

    def __init__(self, description: str = "No bearer token", *, realm: str = DEFAULT_REALM) -> None:
        super().__init__(description, realm=realm)


class InvalidTokenError(AuthError):
    """The token is malformed, forged, expired or not meant for this API: 401 ``invalid_token``."""

    status_code = 401
    error = "invalid_token"


class InvalidRequestError(AuthError):
    """The request carries its token in a way we refuse (RFC 6750 ``invalid_request``).

    Answered with 401 rather than 400 so that clients treat it as "not authenticated" and retry
    with a proper ``Authorization: Bearer`` header.
    """

    status_code = 401
    error = "invalid_request"


class InsufficientScopeError(AuthError):
    """The token is valid but grants none of the accepted values: 403 ``insufficient_scope``."""

    status_code = 403
    error = "insufficient_scope"

    def __init__(
        self,
        description: str,
        *,
        accepted: Iterable[str] = (),
        realm: str = DEFAULT_REALM,
    ) -> None:
        super().__init__(description, realm=realm)
        self.accepted: tuple[str, ...] = tuple(accepted)

    def _challenge_params(self) -> list[tuple[str, str]]:
        params = super()._challenge_params()
        if self.accepted:
            params.append(("scope", " ".join(self.accepted)))
        return params

    def to_dict(self) -> dict[str, str]:
        body = super().to_dict()
        if self.accepted:
            body["scope"] = " ".join(self.accepted)
        return body


class MetadataUnavailableError(AuthError):
    """Discovery or keys cannot be had and no known-good copy exists: 503 with ``Retry-After``.

    ``description`` is what the client gets, so the library keeps it generic ("the identity
    provider is temporarily unavailable"). ``internal_detail`` says which URL failed, how (a TLS
    verification failure by name) and what fixes it: for logs and local tools such as
    ``entra-ciam token validate``, never for a response, since the URL may be internal.
    """

    status_code = 503
    error = "temporarily_unavailable"

    def __init__(
        self,
        description: str,
        *,
        retry_after: int = 30,
        internal_detail: str | None = None,
        realm: str = DEFAULT_REALM,
    ) -> None:
        super().__init__(description, realm=realm)
        self.retry_after = retry_after
        self.internal_detail = internal_detail

    @property
    def www_authenticate(self) -> str | None:
        return None

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [*super().headers, ("Retry-After", str(self.retry_after))]
