"""WSGI middlewares: bearer token authentication (and, later, sign-in)."""

from entra_ciam.wsgi.bearer import BearerTokenMiddleware
from entra_ciam.wsgi.health import HealthMiddleware
from entra_ciam.wsgi.signin import SignInMiddleware

__all__ = ["BearerTokenMiddleware", "HealthMiddleware", "SignInMiddleware"]
