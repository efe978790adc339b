"""entra-ciam: Microsoft Entra External ID for Python web apps and APIs."""

from entra_ciam.acquirer import TokenAcquirer
from entra_ciam.claims import Claims
from entra_ciam.config import EntraConfig
from entra_ciam.context import current_claims
from entra_ciam.decorators import require_role, require_scope, require_scope_or_app_permission
from entra_ciam.errors import (
    AuthError,
    ConfigError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    MetadataUnavailableError,
    MissingTokenError,
)
from entra_ciam.signin import (
    InteractionRequiredError,
    TokenAcquisitionError,
    current_user,
    login_required,
)
from entra_ciam.urls import is_loopback_url, require_secure_url
from entra_ciam.validator import AccessTokenValidator

__all__ = [
    "AccessTokenValidator",
    "AuthError",
    "Claims",
    "ConfigError",
    "EntraConfig",
    "InsufficientScopeError",
    "InteractionRequiredError",
    "InvalidRequestError",
    "InvalidTokenError",
    "MetadataUnavailableError",
    "MissingTokenError",
    "TokenAcquirer",
    "TokenAcquisitionError",
    "current_claims",
    "current_user",
    "is_loopback_url",
    "login_required",
    "require_role",
    "require_scope",
    "require_scope_or_app_permission",
    "require_secure_url",
]

__version__ = "0.1.0"
