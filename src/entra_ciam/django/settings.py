"""Settings for the Django integration: ``settings.ENTRA_CIAM``, then the ``ENTRA_*`` variables.

``ENTRA_CIAM`` is a dict whose keys are the ``ENTRA_*`` variable names without the prefix (for
``EntraConfig``) and the options of the middlewares::

    ENTRA_CIAM = {
        "AUTHORITY": "https://contoso.ciamlogin.com/<tenant-id>",
        "API_CLIENT_ID": "<api-client-id>",
        "PUBLIC_PATHS": ["/healthz"],        # bearer: paths that need no token
        "PUBLIC_PREFIXES": ["/static"],      # bearer: whole-segment prefixes
        "ALLOW_PREFLIGHT": True,             # bearer: CORS preflights pass
        "SIGNIN_SCOPES": ["api://<api-client-id>/Todolist.Read"],  # sign-in
        "SIGNIN_PREFIX": "/auth",            # where entra_ciam.django.urls is included
    }

A key set here wins over its variable; an unknown key stops the start with its name, since a
typo would otherwise silently drop a setting. Only what a component uses is required by it: an
API needs ``AUTHORITY`` and ``API_CLIENT_ID``, sign-in the web app's settings.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from entra_ciam.bearer import BearerPolicy
from entra_ciam.config import EntraConfig
from entra_ciam.errors import ConfigError
from entra_ciam.validator import AccessTokenValidator

if TYPE_CHECKING:
    from entra_ciam.signin.flow import SignIn

__all__ = ["bearer_policy", "check_at_startup", "entra_config", "options", "validator"]

_CONFIG_KEYS = {
    "AUTHORITY": "authority",
    "TENANT_SUBDOMAIN": "tenant_subdomain",
    "TENANT_ID": "tenant_id",
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "API_CLIENT_ID": "api_client_id",
    "CA_BUNDLE": "ca_bundle",
    "REDIRECT_URI": "redirect_uri",
    "POST_LOGOUT_REDIRECT_URI": "post_logout_redirect_uri",
    "SESSION_STORE": "session_store",
    "SESSION_SECRET": "session_secret",
}
_OPTION_KEYS = {
    "PUBLIC_PATHS",
    "PUBLIC_PREFIXES",
    "ALLOW_PREFLIGHT",
    "ACCEPT_V1_AUDIENCE",
    "SIGNIN_SCOPES",
    "SIGNIN_PREFIX",
    "WARM_UP",
}


def _raw() -> Mapping[str, Any]:
    raw = getattr(settings, "ENTRA_CIAM", {})
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured("settings.ENTRA_CIAM must be a dict")
    unknown = sorted(set(raw) - set(_CONFIG_KEYS) - _OPTION_KEYS)
    if unknown:
        known = ", ".join(sorted({*_CONFIG_KEYS, *_OPTION_KEYS}))
        raise ImproperlyConfigured(
            f"settings.ENTRA_CIAM has unknown keys {unknown}; known: {known}"
        )
    return raw


@functools.cache
def entra_config() -> EntraConfig:
    """The tenant settings: ``ENTRA_CIAM`` over the ``ENTRA_*`` variables."""
    raw = _raw()
    overrides = {field: raw[key] for key, field in _CONFIG_KEYS.items() if key in raw}
    return EntraConfig.from_env(**overrides)


def options() -> Mapping[str, Any]:
    """The middleware options of ``ENTRA_CIAM`` (keys of ``_OPTION_KEYS``)."""
    raw = _raw()
    return {key: raw[key] for key in _OPTION_KEYS if key in raw}


@functools.cache
def validator() -> AccessTokenValidator:
    """The one validator of this process (shared by the middleware and DRF's classes)."""
    accept_v1 = bool(options().get("ACCEPT_V1_AUDIENCE", False))
    return AccessTokenValidator.from_config(entra_config(), accept_v1_audience=accept_v1)


def bearer_policy() -> BearerPolicy:
    opts = options()
    return BearerPolicy.build(
        opts.get("PUBLIC_PATHS", ()),
        opts.get("PUBLIC_PREFIXES", ()),
        allow_preflight=bool(opts.get("ALLOW_PREFLIGHT", True)),
    )


def warm_up(part: AccessTokenValidator | SignIn) -> None:
    """``WARM_UP`` ("raise" or "log"): fetch discovery (and keys) now, at start-up."""
    on_error = options().get("WARM_UP")
    if on_error is not None:
        part.warm_up(on_error=on_error)


def _uses(setting: Any, dotted: str) -> bool:
    return isinstance(setting, list | tuple) and dotted in setting


def check_at_startup() -> None:
    """Build what the settings ask for; ImproperlyConfigured naming the setting otherwise."""
    middleware = getattr(settings, "MIDDLEWARE", ())
    drf = getattr(settings, "REST_FRAMEWORK", {}) or {}
    authenticators = drf.get("DEFAULT_AUTHENTICATION_CLASSES", ())
    try:
        _raw()
        if _uses(middleware, "entra_ciam.django.middleware.BearerTokenMiddleware") or _uses(
            authenticators, "entra_ciam.django.rest_framework.EntraTokenAuthentication"
        ):
            validator()
            bearer_policy()
            warm_up(validator())
        if _uses(middleware, "entra_ciam.django.middleware.SignInMiddleware"):
            from entra_ciam.django.middleware import build_signin

            build_signin()
    except (ConfigError, ValueError, TypeError) as exc:
        raise ImproperlyConfigured(str(exc)) from exc


def _forget(**_kwargs: Any) -> None:
    entra_config.cache_clear()
    validator.cache_clear()


setting_changed.connect(_forget)
