"""``login_required`` for Flask views and Starlette/FastAPI endpoints, sync or async.

A view must not run for a visitor who is not signed in, and its framework must answer with a
redirect to sign-in that brings the visitor back. The framework is found at call time with lazy
imports, so the core never imports Flask or Starlette.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from entra_ciam.signin.context import current_context
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.messages import Response
from entra_ciam.signin.pages import redirect
from entra_ciam.signin.returnpath import UnsafeReturnPathError, check_return_path

__all__ = ["login_required", "to_framework_response"]

F = TypeVar("F", bound=Callable[..., Any])


def login_required(func: F) -> F:
    """Run the view only for a signed-in user; send anyone else through sign-in and back."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_guarded(*args: Any, **kwargs: Any) -> Any:
            refusal = _sign_in_redirect()
            if refusal is not None:
                return to_framework_response(refusal)
            return await func(*args, **kwargs)

        return async_guarded  # type: ignore[return-value]

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        refusal = _sign_in_redirect()
        if refusal is not None:
            return to_framework_response(refusal)
        return func(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def _sign_in_redirect() -> Response | None:
    ctx = current_context()
    if ctx is None:  # fail closed: without the middleware nobody can be signed in
        raise RuntimeError("login_required needs SignInMiddleware around the app")
    if ctx.user is not None:
        return None
    try:
        target = check_return_path(ctx.request.return_path)
    except UnsafeReturnPathError:
        target = "/"
    signin = ctx.request.url_for(f"{ctx.signin.prefix}/signin")
    return redirect(f"{signin}?{urlencode({'next': target})}")


def to_framework_response(response: Response) -> Any:
    """``response`` as the running framework's response object (Flask, then Starlette).

    With neither, raise InteractionRequiredError: the sign-in middleware answers with it.
    """
    if "flask" in sys.modules:
        import flask

        if flask.has_request_context():
            return flask.current_app.response_class(
                response.body, status=response.status, headers=response.headers
            )
    if "starlette" in sys.modules:
        from starlette.responses import Response as StarletteResponse

        result = StarletteResponse(response.body, status_code=response.status)
        for name, value in response.headers:
            result.headers.append(name, value)
        return result
    ctx = current_context()
    if ctx is not None:
        ctx.pending = response
    raise InteractionRequiredError("sign-in required", response)
