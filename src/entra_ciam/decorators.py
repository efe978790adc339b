"""``require_scope``, ``require_role`` and ``require_scope_or_app_permission``.

One object serves as a decorator for Flask views and Starlette/FastAPI endpoints (sync or async)
and as a FastAPI dependency. A view that raised would become a 500 in every framework, so a
refusal is turned into the framework's own RFC 6750 response here; the framework is detected at
call time with lazy imports, so the core never imports Flask or Starlette.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from entra_ciam.authorization import Names, Requirement, normalize_names
from entra_ciam.bearer import WS_POLICY_VIOLATION, close_reason
from entra_ciam.claims import Claims
from entra_ciam.context import ENVIRON_KEY, STATE_KEY, get_claims
from entra_ciam.errors import AuthError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["Guard", "require_role", "require_scope", "require_scope_or_app_permission"]

F = TypeVar("F", bound=Callable[..., Any])


def require_scope(*scopes: Names) -> Guard:
    """Accept user tokens whose ``scp`` holds any of ``scopes``; app-only tokens never pass."""
    return Guard(Requirement(scopes=normalize_names(scopes, what="scope")), "require_scope")


def require_role(*roles: Names) -> Guard:
    """Accept tokens (user or app) whose ``roles`` hold any of ``roles``."""
    return Guard(Requirement(roles=normalize_names(roles, what="role")), "require_role")


def require_scope_or_app_permission(
    *,
    scopes: Names | None = None,
    app_permissions: Names | None = None,
) -> Guard:
    """User tokens need one of ``scopes``; app-only tokens need one of ``app_permissions``.

    Either list may be left out (an API reachable only by users, or only by apps), but a list
    that is given must not be empty.
    """
    if scopes is None and app_permissions is None:
        raise ValueError("require_scope_or_app_permission needs scopes=, app_permissions= or both")
    requirement = Requirement(
        scopes=() if scopes is None else normalize_names([scopes], what="scope"),
        app_permissions=(
            () if app_permissions is None else normalize_names([app_permissions], what="role")
        ),
    )
    return Guard(requirement, "require_scope_or_app_permission")


class Guard:
    """A requirement usable as ``@guard``, ``Depends(guard)`` or ``guard.check()``."""

    __slots__ = ("_label", "requirement")

    def __init__(self, requirement: Requirement, label: str) -> None:
        self.requirement = requirement
        self._label = label

    def __repr__(self) -> str:
        return f"{self._label}({' '.join(self.requirement.accepted)!r})"

    def check(self, claims: Claims | None = None) -> Claims:
        """Claims of the current request (or ``claims``) if they pass; an AuthError otherwise."""
        return self.requirement.check(claims if claims is not None else get_claims())

    # -- decorator and FastAPI dependency -------------------------------------------------------

    @overload
    def __call__(self, target: F, /) -> F: ...

    @overload
    def __call__(self, target: HTTPConnection, /) -> Claims: ...

    def __call__(self, target: Any = None, /, *, connection: Any = None) -> Any:
        # FastAPI passes the connection by the name __signature__ gives it.
        conn = connection if connection is not None else target
        if _is_starlette_connection(conn):
            return self._dependency(conn)
        if target is None or not callable(target):
            raise TypeError(f"{self!r} decorates a function, got {type(target).__name__}")
        return self._decorate(target)

    @property
    def __signature__(self) -> inspect.Signature:
        """What FastAPI sees in ``Depends(guard)``: one connection parameter to inject."""
        annotation: Any = inspect.Parameter.empty
        if "starlette" in sys.modules or _importable("starlette"):
            from starlette.requests import HTTPConnection

            annotation = HTTPConnection
        param = inspect.Parameter(
            "connection", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation
        )
        return inspect.Signature([param])

    def _dependency(self, conn: HTTPConnection) -> Claims:
        try:
            return self.requirement.check(_request_claims((conn,), {}))
        except AuthError as err:
            if conn.scope["type"] == "websocket":
                from starlette.exceptions import WebSocketException

                raise WebSocketException(WS_POLICY_VIOLATION, close_reason(err)) from None
            headers = {k: v for k, v in err.headers if k.lower() != "content-type"}
            try:  # FastAPI's subclass renders a structured detail as JSON
                from fastapi import HTTPException as FastAPIHTTPException
            except ImportError:
                from starlette.exceptions import HTTPException

                raise HTTPException(err.status_code, err.description, headers) from None
            raise FastAPIHTTPException(err.status_code, err.to_dict(), headers) from None

    def _decorate(self, func: F) -> F:
        requirement = self.requirement

        if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
        ):

            @functools.wraps(func)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                try:
                    requirement.check(_request_claims(args, kwargs))
                except AuthError as err:
                    websocket = _find_websocket(args, kwargs)
                    if websocket is not None:
                        await websocket.close(WS_POLICY_VIOLATION, close_reason(err))
                        return None
                    return _error_response(err)
                return await func(*args, **kwargs)

            return async_guarded  # type: ignore[return-value]

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                requirement.check(_request_claims(args, kwargs))
            except AuthError as err:
                return _error_response(err)
            return func(*args, **kwargs)

        return guarded  # type: ignore[return-value]


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _is_starlette_connection(obj: object) -> bool:
    if "starlette" not in sys.modules:
        return False
    from starlette.requests import HTTPConnection

    return isinstance(obj, HTTPConnection)


def _connections(args: Iterable[Any], kwargs: dict[str, Any]) -> Iterable[HTTPConnection]:
    if "starlette" not in sys.modules:
        return
    from starlette.requests import HTTPConnection

    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            yield value


def _request_claims(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Claims | None:
    """The claims the middleware set: the ContextVar, else the request object itself.

    The fallback covers runners that do not carry the context into the view's thread.
    """
    claims = get_claims()
    if claims is not None:
        return claims
    found: object = None
    if _flask_request_active():
        from flask import request

        found = request.environ.get(ENVIRON_KEY)
    else:
        for conn in _connections(args, kwargs):
            found = (conn.scope.get("state") or {}).get(STATE_KEY)
            if found is not None:
                break
    return found if isinstance(found, Claims) else None


def _find_websocket(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    for conn in _connections(args, kwargs):
        if conn.scope["type"] == "websocket":
            return conn
    return None


def _flask_request_active() -> bool:
    if "flask" not in sys.modules:
        return False
    import flask

    return flask.has_request_context()


def _error_response(err: AuthError) -> Any:
    """The refusal as a response of the framework handling the request."""
    if _flask_request_active():
        from flask import current_app

        return current_app.response_class(err.body, status=err.status_code, headers=err.headers)
    try:
        from starlette.responses import Response
    except ImportError:  # no framework we know: let the caller's error handling decide
        raise err from None
    return Response(err.body, status_code=err.status_code, headers=dict(err.headers))
