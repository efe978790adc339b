"""ASGI middlewares: bearer token authentication for APIs and sign-in for web apps.

Loaded on first use, so an API importing ``BearerTokenMiddleware`` never loads the sign-in
package (MSAL, the session stores); see :mod:`entra_ciam`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entra_ciam import _lazy

if TYPE_CHECKING:
    from entra_ciam.asgi.bearer import BearerTokenMiddleware
    from entra_ciam.asgi.health import HealthMiddleware
    from entra_ciam.asgi.signin import SignInMiddleware

_EXPORTS: dict[str, str] = {
    "BearerTokenMiddleware": "entra_ciam.asgi.bearer",
    "HealthMiddleware": "entra_ciam.asgi.health",
    "SignInMiddleware": "entra_ciam.asgi.signin",
}

__all__ = ["BearerTokenMiddleware", "HealthMiddleware", "SignInMiddleware"]


if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy.exports(globals(), _EXPORTS, __all__)
