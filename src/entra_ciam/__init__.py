"""entra-ciam: Microsoft Entra External ID for Python web apps and APIs."""

from entra_ciam.config import EntraConfig
from entra_ciam.errors import (
    AuthError,
    ConfigError,
    InsufficientScopeError,
    InvalidTokenError,
    MetadataUnavailableError,
    MissingTokenError,
)

__all__ = [
    "AuthError",
    "ConfigError",
    "EntraConfig",
    "InsufficientScopeError",
    "InvalidTokenError",
    "MetadataUnavailableError",
    "MissingTokenError",
]

__version__ = "0.1.0"
