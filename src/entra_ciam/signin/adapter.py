"""What the WSGI and ASGI sign-in middlewares share: their options and the set-up they make."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, TypeVar

from entra_ciam.acquirer import TokenAcquirer
from entra_ciam.asgi.startup import already_built
from entra_ciam.config import EntraConfig
from entra_ciam.frameworks import integration_for_app
from entra_ciam.http import MsalHttpClient
from entra_ciam.sessions import SessionStore
from entra_ciam.signin.flow import SignIn
from entra_ciam.warmup import OnError

__all__ = ["SignInAdapter"]

AppT = TypeVar("AppT")


class SignInAdapter(Generic[AppT]):
    """Builds one :class:`SignIn` and a :class:`TokenAcquirer` sharing its MSAL set-up.

    The options are spelled out rather than taken as ``**options`` so that type checkers see
    them in ``Middleware(SignInMiddleware, ...)`` declarations.
    """

    def __init__(
        self,
        app: AppT,
        config: EntraConfig | None = None,
        *,
        store: SessionStore | None = None,
        prefix: str = "/auth",
        scopes: str | Iterable[str] = (),
        response_mode: str = "form_post",
        cookie_name: str | None = None,
        idle_timeout: float = 3600.0,
        absolute_timeout: float = 12 * 3600.0,
        secure_cookie: bool | None = None,
        default_return_path: str = "/",
        http_client: MsalHttpClient | None = None,
        signin: SignIn | None = None,
    ) -> None:
        if already_built(self):  # see entra_ciam.asgi.startup
            return
        self.app = app
        self.integration = integration_for_app(app)
        if signin is None:
            signin = SignIn(
                config if config is not None else EntraConfig.from_env(),
                store=store,
                prefix=prefix,
                scopes=scopes,
                response_mode=response_mode,
                cookie_name=cookie_name,
                idle_timeout=idle_timeout,
                absolute_timeout=absolute_timeout,
                secure_cookie=secure_cookie,
                default_return_path=default_return_path,
                http_client=http_client,
            )
        self.signin = signin
        self.acquirer = TokenAcquirer(signin.config, clients=signin.clients)

    def warm_up(self, *, on_error: OnError = "raise") -> bool:
        """Have MSAL fetch the tenant's discovery now, at start-up (see :mod:`entra_ciam.warmup`).

        ``on_error="raise"`` raises IdentityProviderUnavailableError when Entra cannot be
        reached; ``"log"`` logs ``warm_up_failed`` and returns False.
        """
        return self.signin.warm_up(on_error=on_error)

    async def warm_up_async(self, *, on_error: OnError = "raise") -> bool:
        """Like :meth:`warm_up`, in a worker thread (MSAL blocks), for ASGI lifespans."""
        return await asyncio.to_thread(self.signin.warm_up, on_error=on_error)
