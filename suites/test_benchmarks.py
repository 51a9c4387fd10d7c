"""Wall time of the partitioned inference, with pytest-benchmark, energy in ``extra_info``.

The energy figures are exact and machine-independent; wall time is not, so it is measured
here, apart from them, and saved with ``--benchmark-json`` or ``--benchmark-autosave``.
"""

from __future__ import annotations

from typing import Any

from pytest_edgeenergy.plugin import EdgeRunner

ROUNDS = 3
"""Rounds per case: enough for a median on a two-core machine without tripling the suite."""


def test_partitioned_inference_time(edge_run: EdgeRunner, benchmark: Any) -> None:
    """Time the partitioned inference; its energy figures ride along in extra_info."""
    result = edge_run(rounds=ROUNDS)
    assert benchmark.extra_info["edgeenergy"]["key"] == result.case.key
