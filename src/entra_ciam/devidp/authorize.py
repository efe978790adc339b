"""Validate an /authorize request in Entra's order, deciding where each error may be reported.

Until the client and its redirect URI are known good, an error is shown on the emulator's own
page: redirecting to an unchecked URI would make the emulator an open redirector. After that,
errors go back to the app as ``error``, ``error_description`` and ``state``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.registrations import AppRegistration, Registrations
from entra_ciam.devidp.scopes import DelegatedGrant, resolve_delegated

__all__ = [
    "AuthorizeRequest",
    "PageError",
    "RedirectError",
    "RedirectTarget",
    "parse_authorize",
]

_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_PROMPTS = {"login", "none", "select_account", "consent", "create"}
RESPONSE_MODES = ("query", "fragment", "form_post")


class PageError(Exception):
    """Shown to the person on the emulator's page; the app is not told."""

    def __init__(self, error: OAuthError) -> None:
        super().__init__(error.description)
        self.error = error


@dataclasses.dataclass(frozen=True, slots=True)
class RedirectTarget:
    redirect_uri: str
    response_mode: str
    state: str | None


class RedirectError(Exception):
    """Sent back to the app's redirect URI."""

    def __init__(self, error: OAuthError, target: RedirectTarget) -> None:
        super().__init__(error.description)
        self.error = error
        self.target = target


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    client: AppRegistration
    target: RedirectTarget
    nonce: str | None
    code_challenge: str | None  # None: a confidential client that sent no PKCE challenge
    grant: DelegatedGrant
    prompt: str | None
    max_age: int | None
    login_hint: str | None


def _missing(name: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def parse_authorize(
    params: Mapping[str, Sequence[str]], registrations: Registrations
) -> AuthorizeRequest:
    def one(name: str) -> str | None:
        values = params.get(name, [])
        if len(values) > 1:
            raise OAuthError(
                "invalid_request", 90100, f"The parameter '{name}' is given more than once."
            )
        return values[0] if values and values[0] != "" else None

    # 1. Client and redirect URI: problems here are shown, never redirected.
    try:
        client_id = one("client_id")
        redirect_uri = one("redirect_uri")
        state = one("state")
        response_mode = one("response_mode") or "query"
    except OAuthError as exc:
        raise PageError(exc) from None
    if client_id is None:
        raise PageError(_missing("client_id"))
    client = registrations.app(client_id)
    if client is None:
        raise PageError(
            OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{registrations.tenant.name}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant.",
            )
        )
    if redirect_uri is None:
        raise PageError(OAuthError("invalid_request", 900971, "No reply address provided."))
    if not client.accepts_redirect_uri(redirect_uri):
        raise PageError(
            OAuthError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client.client_id}'. Make sure "
                "the redirect URI sent in the request matches one added to your application.",
            )
        )
    if response_mode not in RESPONSE_MODES:
        raise RedirectError(
            OAuthError(
                "invalid_request",
                70007,
                f"The response_mode '{response_mode}' is not supported; use query, fragment or form_post.",
            ),
            RedirectTarget(redirect_uri, "query", state),
        )
    target = RedirectTarget(redirect_uri, response_mode, state)

    # 2. Everything else goes back to the app.
    try:
        response_type = one("response_type")
        if response_type is None:
            raise _missing("response_type")
        if response_type != "code":
            raise OAuthError(
                "unsupported_response_type",
                70005,
                f"The response type '{response_type}' is not supported; this tenant issues "
                "authorization codes only (response_type=code).",
            )
        challenge = one("code_challenge")
        method = one("code_challenge_method")
        if challenge is None and _pkce_required(client, registrations):
            raise OAuthError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code "
                "redemption: this client is public, so send code_challenge and "
                "code_challenge_method=S256."
                if not registrations.strict.pkce_for_confidential_clients
                else "Proof Key for Code Exchange is required ([strict] "
                "pkce_for_confidential_clients): send code_challenge and "
                "code_challenge_method=S256.",
            )
        if challenge is None and method is not None:
            raise OAuthError(
                "invalid_request",
                50149,
                "code_challenge_method was sent without a code_challenge.",
            )
        if challenge is not None and method != "S256":
            raise OAuthError(
                "invalid_request",
                50149,
                f"Invalid code_challenge_method {method!r}: only S256 is accepted.",
            )
        if challenge is not None and not _CHALLENGE_RE.match(challenge):
            raise OAuthError(
                "invalid_request",
                501491,
                "Invalid size of Code_Challenge parameter: an S256 challenge is 43 characters.",
            )
        prompt = one("prompt")
        if prompt is not None and prompt not in _PROMPTS:
            raise OAuthError(
                "invalid_request", 90023, f"The prompt value {prompt!r} is not supported."
            )
        max_age_raw = one("max_age")
        max_age = None
        if max_age_raw is not None:
            if not max_age_raw.isdigit():
                raise OAuthError("invalid_request", 90100, "max_age must be a number of seconds.")
            max_age = int(max_age_raw)
        grant = resolve_delegated(
            registrations, client, one("scope"), consent_error="consent_required"
        )
        nonce = one("nonce")
        login_hint = one("login_hint")
    except OAuthError as exc:
        raise RedirectError(exc, target) from None
    return AuthorizeRequest(
        client=client,
        target=target,
        nonce=nonce,
        code_challenge=challenge,
        grant=grant,
        prompt=prompt,
        max_age=max_age,
        login_hint=login_hint,
    )


def _pkce_required(client: AppRegistration, registrations: Registrations) -> bool:
    """Entra requires PKCE from public clients and SPAs; confidential web apps may omit it."""
    if registrations.strict.pkce_for_confidential_clients:
        return True
    return client.spa or not client.is_confidential
