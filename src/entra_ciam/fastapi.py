"""FastAPI integration: guards as dependencies, and the OpenAPI security scheme for ``/docs``.

The generic guards already work as ``Depends(require_scope(...))``; what FastAPI adds is the
OpenAPI side. :class:`EntraSecurity` is a security scheme: routes guarded through it show the
lock in ``/docs`` with the scopes each one requires, and the Authorize button signs in with
Entra (authorization code flow with PKCE, endpoints taken from the tenant's discovery document)
or, without those endpoints, takes a pasted bearer token.

Refusals are the decorators' answers: behind the bearer middleware the ``AuthError`` reaches the
middleware, which writes the RFC 6750 body and ``WWW-Authenticate`` header; ``/docs`` and
``/openapi.json`` stay reachable by listing :func:`docs_paths` as public paths.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require("fastapi", "fastapi", purpose="entra_ciam.fastapi (FastAPI dependencies)")

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Security
from fastapi.openapi.models import (
    HTTPBearer as HTTPBearerModel,
)
from fastapi.openapi.models import (
    OAuth2 as OAuth2Model,
)
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlows,
)
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from entra_ciam.authorization import Names
from entra_ciam.claims import Claims
from entra_ciam.config import EntraConfig
from entra_ciam.context import get_claims
from entra_ciam.decorators import (
    Guard,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.errors import AuthError
from entra_ciam.starlette import StarletteIntegration

__all__ = ["INTEGRATION", "EntraSecurity", "FastAPIIntegration", "docs_paths"]

log = logging.getLogger("entra_ciam.fastapi")


class FastAPIIntegration(StarletteIntegration):
    """Starlette's answers; without a middleware, FastAPI's HTTPException as the fallback."""

    name = "fastapi"

    def http_exception(self, err: AuthError) -> HTTPException:
        headers = {k: v for k, v in err.headers if k.lower() != "content-type"}
        return HTTPException(err.status_code, err.to_dict(), headers)


INTEGRATION = FastAPIIntegration()


def docs_paths(app: FastAPI) -> list[str]:
    """The paths of the app's interactive docs and schema, for ``public_paths=``."""
    urls = [app.docs_url, app.openapi_url, app.redoc_url]
    if app.docs_url:
        urls.append(app.swagger_ui_oauth2_redirect_url)
    return [url for url in urls if url]


class EntraSecurity(SecurityBase):
    """An OpenAPI security scheme whose guards list their scopes per route.

    ``authorization_url`` and ``token_url`` are the tenant's ``authorization_endpoint`` and
    ``token_endpoint`` (from discovery: use :meth:`from_metadata`); without them the scheme is
    a plain bearer scheme. ``scope_prefix`` (``api://<api-client-id>/``) turns the names tokens
    carry in ``scp`` into the scope values Entra issues them for.
    """

    def __init__(
        self,
        *,
        authorization_url: str | None = None,
        token_url: str | None = None,
        scope_prefix: str = "",
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "entra",
        description: str | None = None,
    ) -> None:
        self.scope_prefix = scope_prefix
        self.scheme_name = scheme_name
        if authorization_url and token_url:
            listed = {scope_prefix + name: text for name, text in (scopes or {}).items()}
            flow = OAuthFlowAuthorizationCode(
                authorizationUrl=authorization_url, tokenUrl=token_url, scopes=listed
            )
            self.model: Any = OAuth2Model(
                flows=OAuthFlows(authorizationCode=flow), description=description
            )
        elif authorization_url or token_url:
            raise ValueError("authorization_url and token_url go together")
        else:
            self.model = HTTPBearerModel(bearerFormat="JWT", description=description)

    @classmethod
    def from_metadata(
        cls,
        metadata: Mapping[str, Any],
        *,
        api_client_id: str,
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "entra",
    ) -> EntraSecurity:
        """The scheme for the tenant whose discovery document is ``metadata``."""
        return cls(
            authorization_url=str(metadata["authorization_endpoint"]),
            token_url=str(metadata["token_endpoint"]),
            scope_prefix=f"api://{api_client_id}/",
            scopes=scopes,
            scheme_name=scheme_name,
        )

    @classmethod
    def from_config(
        cls,
        config: EntraConfig,
        *,
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "entra",
    ) -> EntraSecurity:
        """Read the tenant's discovery document once (at start-up) for the Authorize button.

        When it cannot be read, the scheme falls back to a pasted bearer token and says why in
        the log: the API itself does not depend on it.
        """
        config.require("api_client_id", purpose="The OpenAPI security scheme")
        try:
            answer = httpx.get(config.metadata_url, verify=config.verify, timeout=10)
            answer.raise_for_status()
            metadata = answer.json()
            return cls.from_metadata(
                metadata,
                api_client_id=str(config.api_client_id),
                scopes=scopes,
                scheme_name=scheme_name,
            )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("OpenAPI: no authorization endpoint (%s); /docs asks for a token", exc)
            return cls(scope_prefix=f"api://{config.api_client_id}/", scheme_name=scheme_name)

    async def __call__(self, connection: HTTPConnection) -> Claims | None:
        """What the scheme itself yields: the claims the middleware validated, if any."""
        return get_claims() or INTEGRATION.claims_of(connection)

    # -- guards that show up in OpenAPI ------------------------------------------------------------

    def require_scope(self, *scopes: Names) -> Any:
        """``Depends`` for :func:`entra_ciam.require_scope`, listed in the route's security."""
        return self.guard(require_scope(*scopes))

    def require_role(self, *roles: Names) -> Any:
        return self.guard(require_role(*roles))

    def require_scope_or_app_permission(
        self, *, scopes: Names | None = None, app_permissions: Names | None = None
    ) -> Any:
        return self.guard(
            require_scope_or_app_permission(scopes=scopes, app_permissions=app_permissions)
        )

    def guard(self, guard: Guard) -> Any:
        """Any guard as a dependency returning the claims, listed under this scheme."""
        needed = [self.scope_prefix + name for name in guard.requirement.scopes]
        requirement = guard.requirement
        scheme = Security(self, scopes=needed)

        async def check(connection: HTTPConnection, _: Claims | None = scheme) -> Claims:
            return INTEGRATION.dependency(requirement, connection)

        return Security(check)
