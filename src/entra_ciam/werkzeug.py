"""What Flask and Quart share: Werkzeug's HTTPException, which both answer by themselves.

Flask and Quart turn any other exception raised in a view into a 500, so the exception token
acquisition raises there is also an ``HTTPException`` carrying the sign-in redirect.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require("flask", "werkzeug", purpose="entra_ciam.werkzeug (Flask's and Quart's responses)")

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Response

__all__ = ["SignInRedirect"]


class SignInRedirect(HTTPException, InteractionRequiredError):
    """Flask and Quart return an HTTPException without a code as-is, without error handlers."""

    code = None

    def __init__(self, reason: str, redirect_response: Response) -> None:
        # HTTPException.__init__ would call super().__init__() without our arguments: set its
        # two attributes directly instead.
        InteractionRequiredError.__init__(self, reason, redirect_response)
        self.description = reason
        self.response = WerkzeugResponse(
            redirect_response.body,
            status=redirect_response.status,
            headers=redirect_response.headers,
        )

    def __str__(self) -> str:
        return self.reason
