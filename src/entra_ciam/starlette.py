"""Starlette integration: refusals, sign-in redirects and guard dependencies in Starlette's terms.

Found from the endpoint's ``Request`` or ``WebSocket`` argument, or from the app the ASGI
middlewares wrap. A guarded WebSocket endpoint is closed with 1008 before the handshake.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require(
    "starlette", "starlette", purpose="entra_ciam.starlette (the Starlette integration)"
)

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import HTTPConnection
from starlette.responses import Response as StarletteResponse
from starlette.websockets import WebSocket

from entra_ciam.authorization import Requirement
from entra_ciam.bearer import WS_POLICY_VIOLATION, close_reason
from entra_ciam.claims import Claims
from entra_ciam.context import STATE_KEY, get_claims
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import Integration, current_integration
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Response

__all__ = ["INTEGRATION", "SignInRedirect", "StarletteIntegration"]


class SignInRedirect(HTTPException, InteractionRequiredError):
    """Starlette's exception handling answers an HTTPException with its status and headers."""

    def __init__(self, reason: str, redirect_response: Response) -> None:
        InteractionRequiredError.__init__(self, reason, redirect_response)
        HTTPException.__init__(
            self,
            status_code=redirect_response.status,
            detail="Sign-in required",
            headers=dict(redirect_response.headers),
        )

    def __str__(self) -> str:
        return self.reason


def error_response(err: AuthError) -> StarletteResponse:
    """``err`` as the Starlette response every entra-ciam refusal is: RFC 6750 body and headers."""
    return StarletteResponse(err.body, status_code=err.status_code, headers=dict(err.headers))


class StarletteIntegration(Integration):
    name = "starlette"

    def claims_of(self, request: Any) -> Claims | None:
        if not isinstance(request, HTTPConnection):
            return None
        found = (request.scope.get("state") or {}).get(STATE_KEY)
        return found if isinstance(found, Claims) else None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return error_response(err)

    async def refusal_async(
        self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, WebSocket):
                await value.close(WS_POLICY_VIOLATION, close_reason(err))
                return None
        return error_response(err)

    def redirect(self, response: Response) -> Any:
        answer = StarletteResponse(response.body, status_code=response.status)
        for name, value in response.headers:
            answer.headers.append(name, value)
        return answer

    def interaction_error(self, reason: str, response: Response) -> InteractionRequiredError:
        return SignInRedirect(reason, response)

    def builds_middleware_late(self, app: Any) -> bool:
        # Middleware(...) and add_middleware() are built when the app is first called, around
        # Starlette's inner stack; wrapping the application object itself is the app's code.
        return not isinstance(app, Starlette)

    def dependency(self, requirement: Requirement, request: Any) -> Claims:
        """The claims if they pass; otherwise refuse as the decorators do.

        A dependency cannot return a response. Behind an entra-ciam middleware the AuthError
        itself is raised and the middleware answers with the RFC 6750 body and headers; with
        no middleware, an ``HTTPException`` with the same status and headers is the best the
        framework offers (and the request has no token the guard could accept anyway).
        """
        claims = get_claims()
        if claims is None:
            claims = self.claims_of(request)
        try:
            return requirement.check(claims)
        except AuthError as err:
            if request.scope["type"] == "websocket":
                raise WebSocketException(WS_POLICY_VIOLATION, close_reason(err)) from None
            if current_integration() is not None:
                raise
            raise self.http_exception(err) from None

    def http_exception(self, err: AuthError) -> HTTPException:
        headers = {k: v for k, v in err.headers if k.lower() != "content-type"}
        return HTTPException(err.status_code, err.description, headers)


INTEGRATION = StarletteIntegration()
