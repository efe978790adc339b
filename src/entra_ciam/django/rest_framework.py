"""Django REST framework: an authentication class and permission classes for scopes and roles.

::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "entra_ciam.django.rest_framework.EntraTokenAuthentication"
        ],
    }

    class TodoList(APIView):
        permission_classes = [HasScopeOrAppPermission(
            scopes=["Todolist.Read"], app_permissions=["Todolist.Read.All"]
        )]

Answers are DRF's own: 401 ``{"detail": ...}`` with the RFC 6750 ``WWW-Authenticate`` challenge
(``error="invalid_token"`` and the reason when a token was refused), 403 with
``error="insufficient_scope"`` and the accepted ``scope`` in the challenge, 503 with
``Retry-After`` when Entra's keys cannot be had. ``request.auth`` is the :class:`Claims`,
``request.user`` an :class:`EntraUser` (no database row). The validator is the one built from
the Django settings (``entra_ciam.django.settings``).
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require(
    "django",
    "rest_framework",
    purpose="entra_ciam.django.rest_framework (the Django REST framework classes)",
)

from typing import Any

from django.core.signals import request_finished
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request as DRFRequest

from entra_ciam.authorization import Names, Requirement
from entra_ciam.bearer import error_response, extract_token
from entra_ciam.claims import Claims
from entra_ciam.decorators import (
    Guard,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.django import settings as entra_settings
from entra_ciam.django.integration import DjangoIntegration, http_response
from entra_ciam.errors import (
    DEFAULT_REALM,
    AuthError,
    EntraCiamError,
    InsufficientScopeError,
    MetadataUnavailableError,
    MissingTokenError,
)
from entra_ciam.requeststate import NOTHING, REQUEST, RequestState

__all__ = [
    "INTEGRATION",
    "EntraTokenAuthentication",
    "EntraUser",
    "GuardPermission",
    "HasRole",
    "HasScope",
    "HasScopeOrAppPermission",
    "exception_handler",
]

_ERROR_ATTR = "_entra_ciam_error"


class EntraUser:
    """``request.user`` for a token caller: who it is, from the claims; never a database row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.pk = self.id = claims.oid or claims.sub
        self.username = str(self.pk or "")
        self.is_app = claims.is_app_only

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"EntraUser({self.username!r}, app={self.is_app})"


class TokenRefused(AuthenticationFailed, EntraCiamError):
    """401 carrying the error's own challenge (DRF puts ``auth_header`` in WWW-Authenticate)."""

    def __init__(self, err: AuthError) -> None:
        AuthenticationFailed.__init__(
            self, detail=err.description, code=err.error or "not_authenticated"
        )
        self.auth_header = err.www_authenticate
        self.entra_error = err


class IdentityProviderUnavailable(APIException, EntraCiamError):
    """503 with ``Retry-After``: the keys cannot be had (the reason is logged, not shown)."""

    status_code = 503
    default_detail = "The identity provider is unavailable; try again shortly."
    default_code = "temporarily_unavailable"

    def __init__(self, err: MetadataUnavailableError) -> None:
        APIException.__init__(self)
        self.wait = err.retry_after
        self.entra_error = err


class InsufficientScope(PermissionDenied, EntraCiamError):
    """403 ``insufficient_scope`` with the accepted values in the challenge."""

    def __init__(self, err: AuthError) -> None:
        PermissionDenied.__init__(self, detail=err.description, code="insufficient_scope")
        self.auth_header = err.www_authenticate
        self.entra_error = err


def _django_request(request: Any) -> HttpRequest | None:
    inner = getattr(request, "_request", request)
    return inner if isinstance(inner, HttpRequest) else None


class EntraTokenAuthentication(BaseAuthentication):
    """Authenticates ``Authorization: Bearer`` tokens issued for this API.

    A request with no bearer token is left to the next authentication class (or anonymous);
    a bearer token that is refused is a 401 at once. Claims the bearer middleware already
    validated are taken as they are.
    """

    def authenticate(self, request: DRFRequest) -> tuple[EntraUser, Claims] | None:
        inner = _django_request(request)
        already = getattr(inner, "claims", None)
        if isinstance(already, Claims):
            return EntraUser(already), already
        header = request.META.get("HTTP_AUTHORIZATION")
        try:
            token = extract_token(
                [] if header is None else [header], request.META.get("QUERY_STRING", "")
            )
            claims = entra_settings.validator().validate(token)
        except MissingTokenError:
            return None
        except MetadataUnavailableError as err:
            raise IdentityProviderUnavailable(err) from None
        except AuthError as err:
            if inner is not None:
                setattr(inner, _ERROR_ATTR, err)
            raise TokenRefused(err) from None
        _bind(claims)
        return EntraUser(claims), claims

    def authenticate_header(self, request: DRFRequest) -> str:
        """The challenge of a 401: the refused token's reason, or the bare Bearer challenge."""
        err = getattr(_django_request(request), _ERROR_ATTR, None)
        if isinstance(err, AuthError) and err.www_authenticate:
            return err.www_authenticate
        return MissingTokenError(realm=DEFAULT_REALM).www_authenticate or "Bearer"


class _Authenticated(RequestState):
    """The request's state once ``EntraTokenAuthentication`` validated its token, so that
    ``current_claims()`` and the guards work in the view as they do behind the middleware.

    DRF authenticates inside the view's ``dispatch`` (``APIView.initial`` reads
    ``request.user``), with no step of ours around the rest of the request to reset the
    ContextVar; the state is made current there and undone when Django finishes the request
    (``request_finished``, :func:`_unbind`), as a WSGI server reusing its thread needs. Under
    ASGI the view's context is the request task's own and goes with it.
    """

    __slots__ = ("outer",)

    def __init__(self, claims: Claims, outer: RequestState) -> None:
        super().__init__(INTEGRATION, outer.signin, claims)
        self.outer = outer


def _bind(claims: Claims) -> None:
    REQUEST.set(_Authenticated(claims, REQUEST.get()))


def _unbind(**_kwargs: Any) -> None:
    """``request_finished``: end what :func:`_bind` made current and put back what it hid."""
    state = REQUEST.get()
    while isinstance(state, _Authenticated):
        outer = state.outer
        state.end()
        state.outer = NOTHING
        REQUEST.set(outer)
        state = outer


request_finished.connect(_unbind, dispatch_uid="entra_ciam.django.rest_framework.unbind")


class _GuardPermission(BasePermission):
    """One requirement as a DRF permission; an instance stands in ``permission_classes``."""

    message = "Authentication credentials were not provided."

    def __init__(self, requirement: Requirement, label: str) -> None:
        self.requirement = requirement
        self._label = label

    def __call__(self) -> _GuardPermission:
        # DRF instantiates every entry of permission_classes: an instance gives itself.
        return self

    def __repr__(self) -> str:
        return f"{self._label}({' '.join(self.requirement.accepted)!r})"

    def has_permission(self, request: DRFRequest, view: Any) -> bool:
        claims = request.auth if isinstance(request.auth, Claims) else None
        if claims is None:
            claims = INTEGRATION.claims_of(request)
        if claims is None:
            return False  # DRF answers 401 (with the challenge) or 403 as it always does
        try:
            self.requirement.check(claims)
        except InsufficientScopeError as err:
            raise InsufficientScope(err) from None
        return True


class HasScope(_GuardPermission):
    """Users whose token's ``scp`` holds any of ``scopes``; app-only tokens never pass."""

    def __init__(self, *scopes: Names) -> None:
        super().__init__(require_scope(*scopes).requirement, "HasScope")


class HasRole(_GuardPermission):
    """Tokens (user or app) whose ``roles`` hold any of ``roles``."""

    def __init__(self, *roles: Names) -> None:
        super().__init__(require_role(*roles).requirement, "HasRole")


class HasScopeOrAppPermission(_GuardPermission):
    """User tokens need one of ``scopes``; app-only tokens one of ``app_permissions``."""

    def __init__(
        self, *, scopes: Names | None = None, app_permissions: Names | None = None
    ) -> None:
        guard = require_scope_or_app_permission(scopes=scopes, app_permissions=app_permissions)
        super().__init__(guard.requirement, "HasScopeOrAppPermission")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's ``EXCEPTION_HANDLER`` answering authentication refusals as the guards do.

    With ``"EXCEPTION_HANDLER": "entra_ciam.django.rest_framework.exception_handler"`` a 401,
    403 ``insufficient_scope`` or 503 from these classes has the RFC 6750 JSON body
    (``{"error", "error_description", "scope"}``) instead of DRF's ``{"detail": ...}``, so a DRF
    API answers exactly like one built with the decorators. An ``AuthError`` a view lets through
    (``guard.check()``, or ``current_claims()`` where the view admits anonymous callers) is
    answered the same way; DRF's own handler knows no such error and makes it a 500. Anything
    else goes to DRF's handler.
    """
    from rest_framework.exceptions import NotAuthenticated
    from rest_framework.views import exception_handler as drf_handler

    err = exc if isinstance(exc, AuthError) else getattr(exc, "entra_error", None)
    if err is None and isinstance(exc, NotAuthenticated):
        err = MissingTokenError()
    if isinstance(err, AuthError):
        status, headers, body = error_response(err)
        return http_response(status, headers, body)
    return drf_handler(exc, context)


class GuardPermission(_GuardPermission):
    """Any guard (``require_scope_or_app_permission(...)`` and friends) as a DRF permission,
    so one definition of who may call an endpoint serves views of every kind."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(guard.requirement, f"GuardPermission({guard!r})")


class DRFIntegration(DjangoIntegration):
    """Generic guards on DRF view methods: claims from ``request.auth``, Django responses."""

    name = "rest_framework"

    def claims_of(self, request: Any) -> Claims | None:
        if not isinstance(request, DRFRequest | HttpRequest):  # an APIView keeps its request
            request = getattr(request, "request", None)
        auth = getattr(request, "auth", None) if isinstance(request, DRFRequest) else None
        if isinstance(auth, Claims):
            return auth
        return super().claims_of(_django_request(request))

    def guard_class(self, cls: type[Any], wrap: Any) -> type[Any]:
        raise TypeError(
            f"{cls.__name__}: on a DRF view use permission_classes = [HasScope(...)], "
            "or put the guard on its methods"
        )


INTEGRATION = DRFIntegration()
