"""Django settings of the todo API: everything about the tenant comes from ``ENTRA_*``."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "todo-api-has-no-sessions-or-forms")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("TODO_API_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
ROOT_URLCONF = "examples.django_api.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "entra_ciam.django",  # checks the ENTRA_* settings when Django starts
]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}  # the items live in TODO_API_DB (SQLite, see storage.py)
USE_TZ = True
APPEND_SLASH = False
TODO_API_DB = os.environ.get("TODO_API_DB", "todo.sqlite3")
# Tokens for api://<id> are accepted too, as ASP.NET's Microsoft.Identity.Web does upstream.
ENTRA_CIAM = {"ACCEPT_V1_AUDIENCE": True}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["entra_ciam.django.rest_framework.EntraTokenAuthentication"],
    "DEFAULT_PARSER_CLASSES": [],  # bodies are read by payload.parse_json_object
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "examples.django_api.views.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
