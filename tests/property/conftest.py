"""Hypothesis profiles: `ci` (what `make test` runs: thousands of examples in well under a few minutes) and
`long` (`make fuzz`, for local runs). HYPOTHESIS_PROFILE picks one; `ci` is the default."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "long", max_examples=50000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
