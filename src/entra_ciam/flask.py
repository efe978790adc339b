"""Flask integration: refusals and sign-in redirects as Flask responses.

Nothing to call: the WSGI middlewares find it when they wrap ``app.wsgi_app`` (or the app), and
the guards and ``login_required`` then answer with ``current_app.response_class``.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require("flask", "flask", purpose="entra_ciam.flask (the Flask integration)")

from typing import Any

import flask

from entra_ciam.claims import Claims
from entra_ciam.context import ENVIRON_KEY
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import Integration
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Response
from entra_ciam.werkzeug import SignInRedirect

__all__ = ["INTEGRATION", "FlaskIntegration"]


class FlaskIntegration(Integration):
    name = "flask"

    def claims_of(self, request: Any) -> Claims | None:
        if not flask.has_request_context():
            return None
        found = flask.request.environ.get(ENVIRON_KEY)
        return found if isinstance(found, Claims) else None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return flask.current_app.response_class(
            err.body, status=err.status_code, headers=err.headers
        )

    def redirect(self, response: Response) -> Any:
        return flask.current_app.response_class(
            response.body, status=response.status, headers=response.headers
        )

    def interaction_error(self, reason: str, response: Response) -> InteractionRequiredError:
        return SignInRedirect(reason, response)


INTEGRATION = FlaskIntegration()
