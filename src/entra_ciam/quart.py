"""Quart integration: refusals and sign-in redirects as Quart responses.

Nothing to call: the ASGI middlewares find it when they wrap ``app.asgi_app`` (or the app). Quart
views take no request argument, so the guards answer with ``current_app.response_class``; a
guarded WebSocket handler is closed with 1008 before the handshake completes.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require("quart", "quart", purpose="entra_ciam.quart (the Quart integration)")

from collections.abc import Mapping
from typing import Any

import quart

from entra_ciam.bearer import WS_POLICY_VIOLATION, close_reason
from entra_ciam.claims import Claims
from entra_ciam.context import STATE_KEY
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import Integration
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Response
from entra_ciam.werkzeug import SignInRedirect

__all__ = ["INTEGRATION", "QuartIntegration"]


class QuartIntegration(Integration):
    name = "quart"

    def claims_of(self, request: Any) -> Claims | None:
        scope: Mapping[str, Any]
        if quart.has_request_context():
            scope = quart.request.scope
        elif quart.has_websocket_context():
            scope = quart.websocket.scope
        else:
            return None
        state: Mapping[str, Any] = scope.get("state") or {}
        found = state.get(STATE_KEY)
        return found if isinstance(found, Claims) else None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return quart.current_app.response_class(
            err.body, status=err.status_code, headers=dict(err.headers)
        )

    async def refusal_async(
        self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if quart.has_websocket_context():
            await quart.websocket.close(WS_POLICY_VIOLATION, close_reason(err))
            return None
        return self.refusal(err, args, kwargs)

    def redirect(self, response: Response) -> Any:
        answer = quart.current_app.response_class(response.body, status=response.status)
        for name, value in response.headers:
            answer.headers.add(name, value)
        return answer

    def interaction_error(self, reason: str, response: Response) -> InteractionRequiredError:
        return SignInRedirect(reason, response)


INTEGRATION = QuartIntegration()
