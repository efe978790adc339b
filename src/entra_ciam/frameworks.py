"""Which framework integration answers a request, found from the objects the library is handed.

The guards (``require_scope`` and friends) and ``login_required`` are written once, but a refusal
must come back as the response type of the framework serving the request: a Starlette endpoint
returning a Flask response is a 500, and so is a Django view raising an exception nobody handles.
Each framework's answers are built by its own integration module (``entra_ciam.flask``,
``entra_ciam.quart``, ``entra_ciam.starlette``, ``entra_ciam.fastapi``, ``entra_ciam.django``,
``entra_ciam.django.rest_framework``), in the way Authlib's ``integrations`` and ``identity``'s
per-framework modules are.

Nothing is guessed from what happens to be installed or imported. The integration is the one
that owns a concrete object the library is given:

- the request object a view receives (a Starlette ``Request``, a Django ``HttpRequest``, a DRF
  ``Request``): its class, or one of its bases, is defined in that framework's package;
- otherwise the app a middleware wraps (``Flask.wsgi_app``, a Quart app, Django's WSGI handler,
  Starlette's inner middleware stack), found once when the middleware is built and made current
  for each request it serves (:func:`serving`).

When neither names a framework, nothing can build a native response: the guards raise the
``AuthError`` and the surrounding entra-ciam middleware answers it (see ``wsgi.bearer`` and
``asgi.bearer``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from entra_ciam.requeststate import REQUEST

T = TypeVar("T")

if TYPE_CHECKING:
    from entra_ciam.authorization import Requirement
    from entra_ciam.claims import Claims
    from entra_ciam.errors import AuthError
    from entra_ciam.signin.errors import InteractionRequiredError
    from entra_ciam.signin.messages import Response

__all__ = [
    "Integration",
    "current_integration",
    "integration_for",
    "integration_for_app",
    "integration_for_type",
    "integration_in",
]

# The package that defines a class -> the module holding that framework's integration.
_MODULES: Mapping[str, str] = {
    "flask": "entra_ciam.flask",
    "quart": "entra_ciam.quart",
    "starlette": "entra_ciam.starlette",
    "fastapi": "entra_ciam.fastapi",
    "django": "entra_ciam.django.integration",
    "rest_framework": "entra_ciam.django.rest_framework",
}
# Middlewares keep the app they wrap under one of these names (PEP 3333 and ASGI custom).
_WRAPPED_ATTRS = ("__self__", "app", "wsgi_app", "asgi_app", "__wrapped__")
_MAX_WRAPPERS = 16


class Integration:
    """How one framework answers: the defaults suit a framework that knows none of this.

    Subclasses (one per framework module) build that framework's response objects.
    """

    name = "plain"

    def claims_of(self, request: Any) -> Claims | None:
        """The claims a middleware left on ``request``; for runners that drop the ContextVar."""
        return None

    def refusal(self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``err`` as the framework's response for a sync view (raised when it has none)."""
        raise err

    async def refusal_async(
        self, err: AuthError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The same for an async view; WebSocket handlers are closed here instead."""
        return self.refusal(err, args, kwargs)

    def redirect(self, response: Response) -> Any:
        """A sign-in redirect (or page) as the framework's response."""
        raise self.interaction_error("sign-in required", response)

    def builds_middleware_late(self, app: Any) -> bool:
        """Whether middleware wrapping ``app`` is being built by the framework on its first
        call (the ASGI lifespan start-up) rather than by the application's own code."""
        return False

    def dependency(self, requirement: Requirement, request: Any) -> Claims:
        """A guard used as a dependency (FastAPI's ``Depends(guard)``): the claims, or refuse."""
        raise TypeError(f"{self.name} does not call guards as dependencies")

    def guard_class(self, cls: type[T], wrap: Callable[[Any], Any]) -> type[T]:
        """A guard put on a class-based view: ``wrap`` is applied to what runs every request."""
        raise TypeError(f"{cls.__name__}: put the guard on the view's methods, not on the class")

    def interaction_error(self, reason: str, response: Response) -> InteractionRequiredError:
        """The exception token acquisition raises; a framework that answers it by itself
        gets a subclass of its own HTTP exception."""
        from entra_ciam.signin.errors import InteractionRequiredError

        return InteractionRequiredError(reason, response)


PLAIN = Integration()

_by_type: dict[type, Integration | None] = {}


def _load(package: str) -> Integration:
    module = importlib.import_module(_MODULES[package])
    integration: Integration = module.INTEGRATION
    return integration


def integration_for(obj: object) -> Integration | None:
    """The integration of the framework that defines ``obj``'s class (or a base), if any."""
    return integration_for_type(type(obj))


def integration_for_type(cls: type) -> Integration | None:
    """The integration of the framework that defines ``cls`` or one of its bases, if any."""
    try:
        return _by_type[cls]
    except KeyError:
        pass
    found: Integration | None = None
    for klass in cls.__mro__:
        package = klass.__module__.partition(".")[0]
        if package in _MODULES:
            found = _load(package)
            break
    _by_type[cls] = found
    return found


def integration_for_app(app: object) -> Integration:
    """The integration of the framework app that ``app`` is or wraps (PLAIN when none).

    Follows bound methods (``Flask.wsgi_app``) and middlewares' ``app`` attributes inwards.
    """
    seen: set[int] = set()
    current: object = app
    for _ in range(_MAX_WRAPPERS):
        if current is None or id(current) in seen:
            break
        seen.add(id(current))
        found = integration_for(current)
        if found is not None:
            return found
        current = next(
            (getattr(current, a) for a in _WRAPPED_ATTRS if getattr(current, a, None) is not None),
            None,
        )
    return PLAIN


def integration_in(args: Iterable[Any]) -> tuple[Integration, Any] | None:
    """The first argument a framework owns, with its integration: the view's request."""
    for value in args:
        found = integration_for(value)
        if found is not None:
            return found, value
    return None


def current_integration() -> Integration | None:
    """The integration the middleware serving this request found, if any."""
    return REQUEST.get().integration
