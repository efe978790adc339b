"""ASGI middlewares: bearer token authentication (and, later, sign-in)."""

from entra_ciam.asgi.bearer import BearerTokenMiddleware
from entra_ciam.asgi.health import HealthMiddleware
from entra_ciam.asgi.signin import SignInMiddleware

__all__ = ["BearerTokenMiddleware", "HealthMiddleware", "SignInMiddleware"]
