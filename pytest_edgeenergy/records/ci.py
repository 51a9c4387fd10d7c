"""CI files: the GitHub job summary and github-action-benchmark's JSON.

* When ``$GITHUB_STEP_SUMMARY`` names a file (GitHub Actions sets it for every step), the
  Markdown report is appended to it, so the tables show on the run's summary page.
* ``--edge-benchmark-json=PATH`` writes the cases in github-action-benchmark's
  ``customSmallerIsBetter`` format: a JSON list of ``{"name", "unit", "value", "extra"}``
  objects (``range``, the spread of a measurement, is left out: the figures are exact).

(The JUnit XML properties of each test are pytest's business: :mod:`..plugin.ci`.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .results import CaseResult
from .written import Written, reason, write_file

__all__ = [
    "BENCHMARK_METRICS",
    "STEP_SUMMARY_ENV",
    "append_step_summary",
    "benchmark_entries",
    "write_benchmark_json",
]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
"""The environment variable naming GitHub Actions' job summary file."""

BENCHMARK_METRICS: tuple[tuple[str, str], ...] = (
    ("max_device_j", "J"), ("total_j", "J"), ("makespan_s", "s"), ("comm_bytes", "bytes"))
"""The figures of each case written for github-action-benchmark (one chart each), and units."""


def append_step_summary(markdown: str) -> Written | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` if it is set (``None`` when not).

    Appending is the job summary's protocol (every step adds to the file), so this is the
    one write that is not atomic.
    """
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target or not markdown:
        return None
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        return Written("step summary", target, reason(exc))
    return Written("step summary", target)


def _extra(case: CaseResult) -> str:
    assert case.energy is not None
    devices = ", ".join(f"{d.index} ({d.profile}) {d.total_j:.6g} J" for d in case.energy.devices)
    profiles = ", ".join(f"{name} {sha[:12]}" for name, sha in sorted(
        {d.profile: d.profile_sha256 for d in case.energy.devices}.items()))
    return (f"per device: {devices}\nprofiles (sha256): {profiles}\n"
            f"energy model: {case.energy_model} v{case.energy.energy_model_version}")


def benchmark_entries(cases: Iterable[CaseResult]) -> list[dict[str, Any]]:
    """The ``customSmallerIsBetter`` entries of the cases that passed, in a stable order."""
    out: list[dict[str, Any]] = []
    for case in sorted(cases, key=lambda c: c.key):
        if not case.ok or case.energy is None:
            continue
        extra = _extra(case)
        for metric, unit in BENCHMARK_METRICS:
            value = getattr(case.energy, metric)
            out.append({"name": f"{case.key} {metric}", "unit": unit, "value": value,
                        "extra": extra})
    return out


def write_benchmark_json(path: Path, cases: Iterable[CaseResult]) -> Written:
    """Write the github-action-benchmark file atomically; say what happened."""
    text = json.dumps(benchmark_entries(cases), indent=2, allow_nan=False) + "\n"
    return write_file("benchmark json", path, text)
