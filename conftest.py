"""Repository-wide test settings: hypothesis profiles.

``fast`` (the default) keeps local runs quick; ``ci`` (chosen when the environment variable CI
is set, or with HYPOTHESIS_PROFILE=ci) is derandomised, so a CI run is reproducible, and tries
more examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "ci", max_examples=120, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_default = "ci" if os.environ.get("CI") else "fast"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
