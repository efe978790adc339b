"""DRF's authentication class alone, no entra-ciam middleware."""

from __future__ import annotations

from tests.support.django_site.settings import *  # noqa: F403

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
