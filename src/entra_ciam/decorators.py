"""``require_scope``, ``require_role`` and ``require_scope_or_app_permission``.

One object serves as a decorator for views and endpoints of every supported framework (sync or
async, function or method, and Django class-based views), as a FastAPI dependency and as
``guard.check()``. A view that raised would become a 500 in most frameworks, so a refusal is
handed to the integration of the framework serving the request (see ``entra_ciam.frameworks``),
which builds that framework's own RFC 6750 response. Where no integration applies, the
``AuthError`` is raised for the surrounding entra-ciam middleware to answer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from entra_ciam.authorization import Names, Requirement, normalize_names
from entra_ciam.claims import Claims
from entra_ciam.context import get_claims
from entra_ciam.errors import AuthError
from entra_ciam.frameworks import (
    Integration,
    current_integration,
    integration_for,
    integration_for_type,
    integration_in,
)

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

    # -- decorator and dependency ---------------------------------------------------------------

    @overload
    def __call__(self, target: F, /) -> F: ...

    @overload
    def __call__(self, target: HTTPConnection, /) -> Claims: ...

    def __call__(self, target: Any = None, /, *, connection: Any = None) -> Any:
        # FastAPI passes the connection by the name __signature__ gives it.
        request = connection if connection is not None else target
        if request is not None and not callable(request):
            integration = integration_for(request)
            if integration is not None:
                return integration.dependency(self.requirement, request)
        if inspect.isclass(target):
            owner = integration_for_type(target)
            if owner is None:
                raise TypeError(f"{self!r} cannot guard the class {target.__name__}")
            return owner.guard_class(target, self._decorate)
        if target is None or not callable(target):
            raise TypeError(f"{self!r} decorates a function, got {type(target).__name__}")
        return self._decorate(target)

    @property
    def __signature__(self) -> inspect.Signature:
        """What FastAPI sees in ``Depends(guard)``: one connection parameter to inject.

        Only FastAPI asks, so Starlette's connection type is imported here and nowhere else.
        """
        annotation: Any = inspect.Parameter.empty
        try:
            from starlette.requests import HTTPConnection
        except ImportError:  # pragma: no cover - FastAPI always brings Starlette
            pass
        else:
            annotation = HTTPConnection
        param = inspect.Parameter(
            "connection", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation
        )
        return inspect.Signature([param])

    def _decorate(self, func: F) -> F:
        requirement = self.requirement

        if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
        ):

            @functools.wraps(func)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                found = integration_in((*args, *kwargs.values()))
                try:
                    requirement.check(_request_claims(found))
                except AuthError as err:
                    return await _answerer(found, err).refusal_async(err, args, kwargs)
                return await func(*args, **kwargs)

            return async_guarded  # type: ignore[return-value]

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            found = integration_in((*args, *kwargs.values()))
            try:
                requirement.check(_request_claims(found))
            except AuthError as err:
                return _answerer(found, err).refusal(err, args, kwargs)
            return func(*args, **kwargs)

        return guarded  # type: ignore[return-value]


def _request_claims(found: tuple[Integration, Any] | None) -> Claims | None:
    """The claims the middleware set: the ContextVar, else what it left on the request.

    The fallback covers runners that do not carry the context into the view's thread.
    """
    claims = get_claims()
    if claims is not None:
        return claims
    if found is not None:
        return found[0].claims_of(found[1])
    integration = current_integration()
    return integration.claims_of(None) if integration is not None else None


def _answerer(found: tuple[Integration, Any] | None, err: AuthError) -> Integration:
    """Whoever builds the refusal: the view's request's framework, else the middleware's."""
    if found is not None:
        return found[0]
    integration = current_integration()
    if integration is None:
        raise err  # no framework known: the surrounding middleware answers
    return integration
