"""Django configured inside the test process (once), for tests that import its modules."""

from __future__ import annotations

import functools


@functools.cache
def configure_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="tests-only-not-a-secret",
            ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
            ROOT_URLCONF="tests.support.django_site.urls",
            DATABASES={},
            USE_TZ=True,
            REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
        )
    django.setup()
