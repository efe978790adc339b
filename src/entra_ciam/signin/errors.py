"""What token acquisition raises when it cannot hand back a token."""

from __future__ import annotations

from entra_ciam.errors import EntraCiamError
from entra_ciam.signin.messages import Response

__all__ = ["InteractionRequiredError", "SignInNotConfiguredError", "TokenAcquisitionError"]


class InteractionRequiredError(EntraCiamError):
    """The user must go through sign-in (again) before the token can be had.

    The sign-in middleware answers the request with ``redirect_response`` (a redirect to Entra
    that comes back to the page the user asked for), whatever the view or its framework does
    with this exception: nothing is expected of the view beyond letting it propagate.
    """

    def __init__(self, reason: str, redirect_response: Response) -> None:
        super().__init__(reason)
        self.reason = reason
        self.redirect_response = redirect_response


class TokenAcquisitionError(EntraCiamError):
    """Entra refused or could not be reached; no user interaction would help.

    ``status_code`` is what an app should answer: 503 when Entra is unreachable or asked us to
    slow down (``retry_after`` then holds the seconds to wait, for a ``Retry-After`` header), 502
    when it refused the app's request, 401 when an on-behalf-of caller must get a new token
    (``claims`` then holds the claims challenge to pass back).
    """

    def __init__(
        self,
        description: str,
        *,
        error: str | None = None,
        status_code: int = 502,
        claims: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.status_code = status_code
        self.claims = claims
        self.retry_after = retry_after


class SignInNotConfiguredError(EntraCiamError, RuntimeError):
    """``login_required`` or ``current_user()`` ran where no sign-in middleware is installed."""
