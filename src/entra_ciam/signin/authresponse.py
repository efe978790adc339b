"""The authorization response: which fields are kept, how long each may be, and its sealed form.

Entra answers a sign-in at the redirect route with a handful of short fields. Only those are
kept, each under a length bound, so whatever a client posts (up to 64 KiB and 100 fields), what
the sign-in handles and carries is small.

An answer by ``form_post`` is a cross-site POST: it carries no ``SameSite=Lax`` session cookie.
The flow sends it on to a top-level GET of the same route, which does carry the cookie. The
answer travels *sealed* in that URL, never in a store: Fernet (AES and HMAC under
``ENTRA_SESSION_SECRET``, through the app's one :class:`TokenCacheCipher`), stamped with its
creation time and refused after :data:`RESUME_LIFETIME` seconds. A request without a session
therefore writes nothing anywhere, however many arrive. Encryption keeps the authorization code
out of logs and browser history; the MAC keeps anyone from making a sealed answer but this app.
Replaying one gains nothing: its ``state`` is taken exactly once, from the session of the
browser that started the sign-in, and Entra redeems a code once.
"""

from __future__ import annotations

from collections.abc import Mapping

from entra_ciam.errors import EntraCiamError
from entra_ciam.sessions import TokenCacheCipher

__all__ = [
    "MAX_SEALED_LENGTH",
    "RESPONSE_FIELDS",
    "RESUME_LIFETIME",
    "AuthResponseError",
    "keep_response_fields",
    "seal",
    "unseal",
]

# The fields of an authorization response (RFC 6749 4.1.2 and 4.1.2.1, OpenID Connect session
# management's session_state, Microsoft's client_info) and the most characters each may have.
# Entra's codes run to a few thousand characters (Azure AD B2C's passed 4,000 in 2023).
RESPONSE_FIELDS: Mapping[str, int] = {
    "state": 128,
    "code": 8192,
    "session_state": 256,
    "client_info": 2048,
    "error": 128,
    "error_description": 2048,
    "error_uri": 2048,
}
RESUME_LIFETIME = 120  # seconds from the form_post to the GET that follows it at once
_PURPOSE = "auth-response"  # a token cache or a flow is never mistaken for an answer
# The longest value ``seal`` can make: JSON escapes a character into at most 6 bytes, Fernet adds
# 57 bytes and padding, base64 4/3. Anything longer is refused before any cryptography.
MAX_SEALED_LENGTH = (6 * sum(RESPONSE_FIELDS.values()) + 512) * 4 // 3 + 128


class AuthResponseError(EntraCiamError, ValueError):
    """A field of the response is out of bounds; the message says which, for the 400 page."""


def keep_response_fields(params: Mapping[str, str]) -> dict[str, str]:
    """The response fields of ``params`` (others are dropped); an oversized one is an error."""
    kept: dict[str, str] = {}
    for name, limit in RESPONSE_FIELDS.items():
        value = params.get(name)
        if value is None:
            continue
        if len(value) > limit:
            raise AuthResponseError(
                f"The sign-in response's {name} is too long ({len(value)} characters; at most "
                f"{limit} are accepted)."
            )
        kept[name] = value
    return kept


def seal(cipher: TokenCacheCipher, response: Mapping[str, str]) -> str:
    """The response, encrypted and authenticated, for the URL of the GET that resumes it."""
    return cipher.seal_json(_PURPOSE, response)


def unseal(cipher: TokenCacheCipher, sealed: str) -> dict[str, str] | None:
    """The response ``seal`` made at most RESUME_LIFETIME seconds ago; None if not exactly that."""
    if len(sealed) > MAX_SEALED_LENGTH:
        return None
    value = cipher.open_json(_PURPOSE, sealed, RESUME_LIFETIME)
    if value is None or not all(isinstance(v, str) for v in value.values()):
        return None
    try:
        return keep_response_fields(value)
    except AuthResponseError:
        return None
