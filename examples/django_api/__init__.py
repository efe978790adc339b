"""The todo API of Microsoft's sample in Django REST framework, with the Starlette example's
contract (``examples.starlette_api``): same routes, rules, bodies and refusals.

``python -m examples.django_api`` serves it with uvicorn (ASGI; ``--server runserver`` for
Django's own WSGI server). ``create_app()`` configures Django in this process and returns the
ASGI application, for tests and embedding.
"""

from __future__ import annotations

import os
from typing import Any

from examples.starlette_api.storage import DEFAULT_DB_PATH

from entra_ciam import EntraConfig

__all__ = ["create_app"]


def create_app(
    config: EntraConfig | None = None,
    db_path: str | os.PathLike[str] = DEFAULT_DB_PATH,
) -> Any:
    """The API for the tenant in ``config`` (``ENTRA_*`` variables when None), as ASGI.

    Django has one set of settings per process: a later call replaces the earlier one's
    tenant, database and URLs (each app built keeps its own middleware and validator).
    """
    import django
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.core.signals import setting_changed
    from examples.django_api import settings as defaults

    values = {name: getattr(defaults, name) for name in dir(defaults) if name.isupper()}
    values["TODO_API_DB"] = os.fspath(db_path)
    if config is not None:
        values["ENTRA_CIAM"] = {**defaults.ENTRA_CIAM, **_entra_settings(config)}
    if not settings.configured:
        settings.configure(**values)
    django.setup()
    for name, value in values.items():
        if name in ("INSTALLED_APPS", "DATABASES"):
            continue  # fixed once Django is set up (and the API keeps its items in SQLite)
        setattr(settings, name, value)
        setting_changed.send(sender=None, setting=name, value=value, enter=True)
    return get_asgi_application()


def _entra_settings(config: EntraConfig) -> dict[str, Any]:
    fields = ("authority", "api_client_id", "tenant_id", "ca_bundle")
    return {f.upper(): getattr(config, f) for f in fields if getattr(config, f)}
