"""Errors in Entra's shapes: the token endpoint's JSON body and the authorize redirect parameters.

Each error carries the OAuth ``error`` code, the AADSTS number and a message worded like Entra's,
so code written against the emulator reacts the same way against a real tenant.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

__all__ = ["OAuthError"]

_STATUS = {
    "invalid_client": 401,
    "temporarily_unavailable": 503,
}


class OAuthError(Exception):
    """An OAuth 2.0 error with Entra's extra fields (``error_codes``, ``correlation_id``...).

    ``suberror`` is Entra's refinement of ``error`` at the token endpoint (``consent_required``
    for AADSTS65001, ``bad_token`` for a revoked or expired refresh token). MSAL reads it to
    decide that only an interactive sign-in helps, and drops a ``bad_token`` refresh token from
    its cache, so it must be there for clients to react as they do against Entra.
    """

    def __init__(
        self,
        error: str,
        code: int,
        message: str,
        *,
        status: int | None = None,
        suberror: str | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status if status is not None else _STATUS.get(error, 400)
        self.suberror = suberror

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.message}"

    def body(
        self, correlation_id: str | None = None, *, now: float | None = None
    ) -> dict[str, Any]:
        """The JSON the token endpoint answers with."""
        correlation_id = correlation_id or str(uuid.uuid4())
        trace_id = str(uuid.uuid4())
        moment = (
            datetime.datetime.now(datetime.UTC)
            if now is None
            else datetime.datetime.fromtimestamp(now, datetime.UTC)
        )
        timestamp = moment.strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"{self.description}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror is not None:
            body["suberror"] = self.suberror
        return body

    def redirect_params(self, state: str | None) -> dict[str, str]:
        """The parameters sent back to the app's redirect URI.

        No ``suberror``: at /authorize the refinement is the ``error`` itself (``consent_required``,
        ``login_required``), which is what MSAL reads there; ``suberror`` belongs to the token
        endpoint's JSON.
        """
        params = {"error": self.error, "error_description": self.description}
        if state is not None:
            params["state"] = state
        return params
