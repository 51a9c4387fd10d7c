"""Settings shared by the unit tests' op and model matrices."""

from __future__ import annotations

import pytest

DEVICE_COUNTS = [pytest.param(2, marks=pytest.mark.heavy), 3]
"""Three devices split unevenly (remainders, halos at odd borders) in the default run; the even
split of two devices runs with the heavy tests (README, "Running the tests")."""
