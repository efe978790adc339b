"""Web-app sign-in: the auth code flow as sans-IO steps, shared by the WSGI and ASGI adapters.

Use ``entra_ciam.wsgi.SignInMiddleware`` (Flask) or ``entra_ciam.asgi.SignInMiddleware``
(Starlette, FastAPI); views read ``current_user()`` and get tokens from ``TokenAcquirer``.
"""

from entra_ciam.signin.context import RequestContext, current_user
from entra_ciam.signin.errors import InteractionRequiredError, TokenAcquisitionError
from entra_ciam.signin.flow import SignIn
from entra_ciam.signin.messages import Request, Response
from entra_ciam.signin.returnpath import (
    UnsafeReturnPathError,
    check_return_path,
    is_safe_return_path,
)
from entra_ciam.signin.views import login_required

__all__ = [
    "InteractionRequiredError",
    "Request",
    "RequestContext",
    "Response",
    "SignIn",
    "TokenAcquisitionError",
    "UnsafeReturnPathError",
    "check_return_path",
    "current_user",
    "is_safe_return_path",
    "login_required",
]
