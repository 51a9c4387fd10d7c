"""CI outputs: the GitHub job summary, github-action-benchmark's JSON, JUnit XML properties.

* When ``$GITHUB_STEP_SUMMARY`` names a file (GitHub Actions sets it for every step), the
  Markdown report is appended to it, so the tables show on the run's summary page.
* ``--edge-benchmark-json=PATH`` writes the cases in github-action-benchmark's
  ``customSmallerIsBetter`` format: a JSON list of ``{"name", "unit", "value", "extra"}``
  objects (``range``, the spread of a measurement, is left out: the figures are exact).
* Each ``edge_run()`` adds the case's figures to its test's ``user_properties`` (what
  ``record_property`` does), so they land in ``--junitxml`` as ``<property>`` elements.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from .report import write_atomic
from .results import CaseResult

__all__ = [
    "BENCHMARK_METRICS",
    "STEP_SUMMARY_ENV",
    "append_step_summary",
    "benchmark_entries",
    "record_case_properties",
    "write_benchmark_json",
]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
"""The environment variable naming GitHub Actions' job summary file."""

BENCHMARK_METRICS: tuple[tuple[str, str], ...] = (
    ("max_device_j", "J"), ("total_j", "J"), ("makespan_s", "s"), ("comm_bytes", "bytes"))
"""The figures of each case written for github-action-benchmark (one chart each), and units."""


def append_step_summary(markdown: str) -> str | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` if it is set; an error line or None."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target or not markdown:
        return None
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        return f"could not append the edge energy report to ${STEP_SUMMARY_ENV} " \
               f"({target}): {exc.strerror or exc}"
    return None


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


def write_benchmark_json(path: Path, cases: Iterable[CaseResult]) -> str | None:
    """Write the github-action-benchmark file atomically; an error line or None."""
    text = json.dumps(benchmark_entries(cases), indent=2, allow_nan=False) + "\n"
    try:
        write_atomic(path, text)
    except OSError as exc:
        return f"could not write the edge benchmark JSON {path}: {exc.strerror or exc}"
    return None


def record_case_properties(node: pytest.Item, case: CaseResult, baseline_status: str) -> None:
    """Add the case's figures to the test's properties (JUnit XML ``<property>`` elements).

    This is what the ``record_property`` fixture does, without its warning under the default
    ``junit_family=xunit2`` (whose schema has no properties on a test case: CI tools read
    them anyway; use ``-o junit_family=xunit1`` for a strict schema validator).
    """
    props: list[tuple[str, object]] = [("edge_case", case.key), ("edge_status", case.status)]
    if case.energy is not None:
        energy = case.energy
        props += [("edge_max_device_j", energy.max_device_j), ("edge_total_j", energy.total_j),
                  ("edge_makespan_s", energy.makespan_s), ("edge_comm_bytes", energy.comm_bytes)]
        props += [(f"edge_device{d.index}_j", d.total_j) for d in energy.devices]
    props.append(("edge_baseline", baseline_status))
    node.user_properties.extend((name, repr(v) if isinstance(v, float) else v)
                                for name, v in props)
