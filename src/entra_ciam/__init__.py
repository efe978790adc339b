"""entra-ciam: Microsoft Entra External ID for Python web apps and APIs.

Every name below is loaded on first use (PEP 562): an API that only validates tokens imports the
validator, the bearer middleware and the decorators, and never pays for MSAL, requests, SQLite,
the session stores or the sign-in package, which only a web app that signs users in needs. A
serverless API pays its imports on every cold start; the test suite pins which modules load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entra_ciam import _lazy

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from entra_ciam.acquirer import TokenAcquirer
    from entra_ciam.claims import Claims
    from entra_ciam.config import EntraConfig
    from entra_ciam.context import current_claims
    from entra_ciam.decorators import require_role, require_scope, require_scope_or_app_permission
    from entra_ciam.errors import (
        AuthError,
        ConfigError,
        EntraCiamError,
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

__version__ = "0.1.0"

# name -> the module that defines it. The validator side (validator, claims, errors, context,
# decorators) never imports the web-app side (signin, acquirer, sessions, msal).
_EXPORTS: dict[str, str] = {
    "AccessTokenValidator": "entra_ciam.validator",
    "AuthError": "entra_ciam.errors",
    "Claims": "entra_ciam.claims",
    "ConfigError": "entra_ciam.errors",
    "EntraCiamError": "entra_ciam.errors",
    "EntraConfig": "entra_ciam.config",
    "InsufficientScopeError": "entra_ciam.errors",
    "InteractionRequiredError": "entra_ciam.signin.errors",
    "InvalidRequestError": "entra_ciam.errors",
    "InvalidTokenError": "entra_ciam.errors",
    "MetadataUnavailableError": "entra_ciam.errors",
    "MissingTokenError": "entra_ciam.errors",
    "TokenAcquirer": "entra_ciam.acquirer",
    "TokenAcquisitionError": "entra_ciam.signin.errors",
    "current_claims": "entra_ciam.context",
    "current_user": "entra_ciam.signin.context",
    "is_loopback_url": "entra_ciam.urls",
    "login_required": "entra_ciam.signin.views",
    "require_role": "entra_ciam.decorators",
    "require_scope": "entra_ciam.decorators",
    "require_scope_or_app_permission": "entra_ciam.decorators",
    "require_secure_url": "entra_ciam.urls",
}

__all__ = [
    "AccessTokenValidator",
    "AuthError",
    "Claims",
    "ConfigError",
    "EntraCiamError",
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


if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy.exports(globals(), _EXPORTS, __all__)
