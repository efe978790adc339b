"""Hypothesis settings for the fuzz runs over loopback HTTP (issue 7, point 5).

``ENTRA_CIAM_FUZZ_EXAMPLES`` sets the examples per test (200 by default). Each example is a real
request, so there is no deadline, no example database (runs stay independent), and the health
checks that assume cheap, fixture-free examples are off.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ENTRA_CIAM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
