"""The API side: Django's bearer middleware, DRF's authentication class."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_TEST_SECRET_KEY", "tests-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.support.django_site.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "entra_ciam.django",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    # as in a project made by startproject: requests with a validated token are exempt
    "django.middleware.csrf.CsrfViewMiddleware",
    "entra_ciam.django.middleware.BearerTokenMiddleware",
    # a CORS layer inside the bearer middleware, answering preflights under /cors/
    "tests.support.django_site.cors.CorsPreflightMiddleware",
]
DATABASES: dict[str, object] = {}
USE_TZ = True
ENTRA_CIAM = {
    # /drf is protected by DRF's own authentication class; /web by sign-in (settings_web).
    "PUBLIC_PATHS": ["/healthz"],
    "PUBLIC_PREFIXES": ["/drf", "/web", "/auth"],
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["entra_ciam.django.rest_framework.EntraTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
