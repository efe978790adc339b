"""A local Microsoft Entra External ID tenant for development and tests (``entra-ciam dev-idp``).

A real OpenID Connect provider on 127.0.0.1 with Entra's paths, token shapes and error shapes:
the examples, the end-to-end tests and a newcomer's first minutes need no Azure account and no
internet. It shares nothing with the validator except public standards.
"""

from entra_ciam.devidp.registrations import (
    AppRegistration,
    RegistrationError,
    Registrations,
    User,
    load_registrations,
)
from entra_ciam.devidp.server import DevIdp, DevIdpError

__all__ = [
    "AppRegistration",
    "DevIdp",
    "DevIdpError",
    "RegistrationError",
    "Registrations",
    "User",
    "load_registrations",
]
