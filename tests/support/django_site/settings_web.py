"""The web app side: sign-in as well (the ``ENTRA_*`` web app variables must be set)."""

from __future__ import annotations

from tests.support.django_site.settings import *  # noqa: F403
from tests.support.django_site.settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "entra_ciam.django.middleware.SignInMiddleware"]
