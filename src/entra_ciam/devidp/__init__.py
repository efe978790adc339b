"""A local Microsoft Entra External ID tenant for development and tests (``entra-ciam dev-idp``).

A real OpenID Connect provider on 127.0.0.1 with Entra's paths, token shapes and error shapes:
the examples, the end-to-end tests and a newcomer's first minutes need no Azure account and no
internet. It shares nothing with the validator except public standards.

Its own dependency (PyJWT, which mints its tokens) comes with the ``emulator`` extra.
"""

from entra_ciam import _extras

_extras.require("emulator", "jwt", purpose="The Entra External ID emulator (entra-ciam dev-idp)")

# The extra is checked before the modules that need it load.
from entra_ciam.devidp.registrations import (  # noqa: E402
    AppRegistration,
    RegistrationError,
    Registrations,
    User,
    load_registrations,
)
from entra_ciam.devidp.server import DevIdp, DevIdpError  # noqa: E402

__all__ = [
    "AppRegistration",
    "DevIdp",
    "DevIdpError",
    "RegistrationError",
    "Registrations",
    "User",
    "load_registrations",
]
