"""``login_required`` for the views of every supported framework, sync or async.

A view must not run for a visitor who is not signed in, and the visitor must be sent through
sign-in and back. The redirect is built here once; the integration of the framework serving the
request (see ``entra_ciam.frameworks``) turns it into that framework's response. Where none
applies, the sign-in middleware answers the ``InteractionRequiredError`` raised instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from entra_ciam.frameworks import (
    current_integration,
    integration_for_type,
    integration_in,
)
from entra_ciam.requeststate import REQUEST
from entra_ciam.signin.context import RequestContext, current_context
from entra_ciam.signin.errors import SignInNotConfiguredError
from entra_ciam.signin.messages import Response
from entra_ciam.signin.pages import redirect

__all__ = ["login_required"]

F = TypeVar("F", bound=Callable[..., Any])


def login_required(func: F) -> F:
    """Run the view only for a signed-in user; send anyone else through sign-in and back.

    Decorates functions and methods; on Django, class-based views too.
    """
    if inspect.isclass(func):
        owner = integration_for_type(func)
        if owner is None:
            raise TypeError(f"login_required cannot guard the class {func.__name__}")
        return owner.guard_class(func, login_required)  # type: ignore[return-value]
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_guarded(*args: Any, **kwargs: Any) -> Any:
            ctx = REQUEST.get().signin
            if ctx is None or ctx.user is None:  # the usual case, a user, costs two reads
                return _answer(_sign_in_redirect(), args, kwargs)
            return await func(*args, **kwargs)

        return async_guarded  # type: ignore[return-value]

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        ctx = REQUEST.get().signin
        if ctx is None or ctx.user is None:
            return _answer(_sign_in_redirect(), args, kwargs)
        return func(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def _context() -> RequestContext:
    ctx = current_context()
    if ctx is None:  # fail closed: without the middleware nobody can be signed in
        raise SignInNotConfiguredError("login_required needs SignInMiddleware around the app")
    return ctx


def _sign_in_redirect() -> Response:
    """Where a visitor who is not signed in goes: sign-in, then back to this page."""
    ctx = _context()  # raises without the middleware
    target = ctx.return_path()
    signin = ctx.request.url_for(f"{ctx.signin.prefix}/signin")
    return redirect(f"{signin}?{urlencode({'next': target})}")


def _answer(response: Response, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``response`` as the serving framework's response; raised for the middleware otherwise."""
    found = integration_in((*args, *kwargs.values()))
    integration = found[0] if found is not None else current_integration()
    if integration is not None:
        return integration.redirect(response)
    ctx = _context()
    ctx.pending = response
    raise ctx.make_interaction_error("sign-in required", response)
