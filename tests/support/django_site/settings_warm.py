"""The web app side with ``WARM_UP`` set from ``DJANGO_TEST_WARM_UP`` (tests/test_warmup.py)."""

from __future__ import annotations

import os

from tests.support.django_site.settings_web import *  # noqa: F403
from tests.support.django_site.settings_web import ENTRA_CIAM

ENTRA_CIAM = {**ENTRA_CIAM, "WARM_UP": os.environ["DJANGO_TEST_WARM_UP"]}
