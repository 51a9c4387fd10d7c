"""Thresholds (``--edge-fail-on``) and the comparison of one case with its baseline entry."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pytest_edgeenergy.records.format import relative_change
from pytest_edgeenergy.records.results import CaseEnergy, DeviceResult
from pytest_edgeenergy.records.thresholds import (
    DEFAULT_FAIL_ON,
    METRICS,
    ThresholdError,
    compare_energy,
    parse_thresholds,
)


def device(index: int, total_j: float, **changes: object) -> DeviceResult:
    """A device record whose energy is ``total_j`` (all of it static)."""
    base = DeviceResult(index=index, profile="rpi4", profile_sha256="a" * 64, busy_s=0.001,
                        comm_s=0.0, compute_j=0.0, comm_j=0.0, static_j=total_j,
                        total_j=total_j, macs=1000, bytes_sent=100, bytes_received=100,
                        peak_bytes=5000, memory_bytes=10**9, fits=True, idle=False)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def energy(*totals: float, comm_bytes: int = 200, makespan_s: float = 0.01,
           **device_changes: object) -> CaseEnergy:
    """A case of one device per total."""
    devices = tuple(device(i, t, **device_changes) for i, t in enumerate(totals))
    return CaseEnergy(energy_model_version="1", makespan_s=makespan_s, max_device_j=max(totals),
                      mean_device_j=sum(totals) / len(totals), total_j=sum(totals),
                      comm_bytes=comm_bytes, graph_macs=2000, redundant_macs=0,
                      devices=devices)


def test_the_defaults_parse_and_every_metric_names_a_real_field() -> None:
    """Each default threshold reads; each metric reads a field of the records."""
    assert [t.text for t in parse_thresholds(DEFAULT_FAIL_ON)] == list(DEFAULT_FAIL_ON)
    sample = energy(1.0, 2.0)
    for metric in METRICS.values():
        holder = sample.devices[0] if metric.per_device else sample
        assert isinstance(getattr(holder, metric.field), int | float), metric.name


@pytest.mark.parametrize(("text", "problem"), [
    ("max_device_j", "is not METRIC:LIMIT"),
    ("max_devic_j:2%", "unknown metric 'max_devic_j' (did you mean 'max_device_j'?)"),
    ("max_device_j:abc", "bad limit 'abc'"),
    ("max_device_j:-1%", "bad limit '-1%'"),
    ("max_device_j:%", "bad limit '%'"),
    ("max_device_j:nan", "bad limit 'nan'"),
    ("max_device_j:2%,max_device_j:3%", "names the metric 'max_device_j' twice"),
    ("none,total_j:1%", "'none' cannot be combined"),
    (" , ", "names no threshold"),
])
def test_a_bad_expression_says_what_is_wrong(text: str, problem: str) -> None:
    """Unknown metric, bad or negative limit, a metric twice: each has its own message."""
    with pytest.raises(ThresholdError, match=None) as info:
        parse_thresholds([text])
    assert problem in str(info.value)


def test_expressions_may_be_repeated_or_comma_separated_and_none_turns_all_off() -> None:
    """``a:1%,b:0`` and two separate values read the same; ``none`` is no threshold."""
    one = parse_thresholds(["total_j:1%,comm_bytes:0"])
    two = parse_thresholds(["total_j:1%", "comm_bytes:0"])
    assert one == two and [t.text for t in one] == ["total_j:1%", "comm_bytes:0"]
    assert parse_thresholds(["none"]) == ()
    assert parse_thresholds(["device_j:1.5e-1%"])[0].limit == 0.15


def test_a_relative_limit_fails_growth_past_it_and_reports_shrinkage_past_it() -> None:
    """2 % allows 1.02x and fails 1.03x; 0.97x is an improvement, 0.99x just a change."""
    (threshold,) = parse_thresholds(["max_device_j:2%"])
    old = energy(1.0, 0.5)
    assert compare_energy(old, energy(1.02, 0.5), [threshold]).status == "changed"
    worse = compare_energy(old, energy(1.03, 0.5), [threshold])
    assert worse.status == "regressed"
    (finding,) = worse.regressions
    assert (finding.old, finding.new) == (1.0, 1.03)
    assert finding.headline() == "max_device_j grew past 2%: 1 J -> 1.03 J (+3%)"
    assert finding.lines()[1:] == ["  device 0 (rpi4): 1 J -> 1.03 J (+3%)",
                                   "  device 1 (rpi4): 0.5 J -> 0.5 J (0%)"]
    assert compare_energy(old, energy(0.97, 0.5), [threshold]).status == "improved"
    assert compare_energy(old, energy(0.99, 0.5), [threshold]).status == "changed"
    assert compare_energy(old, energy(1.0, 0.5), [threshold]).status == "unchanged"


def test_a_device_metric_names_each_device_past_its_limit() -> None:
    """``device_j`` checks every device against itself: a shift hidden in the max shows."""
    (threshold,) = parse_thresholds(["device_j:1%"])
    old = energy(1.0, 0.5)
    new = energy(1.0, 0.6)  # the largest figure and device 0 unchanged; device 1 +20 %
    (finding,) = compare_energy(old, new, [threshold]).regressions
    assert finding.headline() == ("device_j grew past 1% on device 1 (rpi4) (most: 0.5 J -> "
                                  "0.6 J, +20%)")
    assert [d.past_limit for d in finding.devices] == [False, True]
    assert compare_energy(old, new, parse_thresholds(["max_device_j:1%"])).status == "changed"


def test_an_absolute_limit_is_in_the_metrics_unit_and_zero_means_any_growth() -> None:
    """``comm_bytes:0`` fails one byte more; ``comm_bytes:10`` allows ten."""
    old = energy(1.0, comm_bytes=200)
    assert compare_energy(old, energy(1.0, comm_bytes=201),
                          parse_thresholds(["comm_bytes:0"])).status == "regressed"
    assert compare_energy(old, energy(1.0, comm_bytes=210),
                          parse_thresholds(["comm_bytes:10"])).status == "changed"
    assert compare_energy(old, energy(1.0, comm_bytes=199),
                          parse_thresholds(["comm_bytes:0"])).status == "improved"


def test_growth_from_zero_is_infinite_and_a_regression_wins_over_an_improvement() -> None:
    """A figure that was 0 grows by +inf %; one device worse and one better is a regression."""
    assert relative_change(0.0, 0.0) == 0.0
    assert relative_change(0.0, 1.0) == math.inf
    old = energy(1.0, 1.0, peak_bytes=0)
    result = compare_energy(old, energy(1.0, 1.0, peak_bytes=1),
                            parse_thresholds(["device_peak_bytes:50%"]))
    assert result.status == "regressed"
    mixed = compare_energy(energy(1.0, 1.0), energy(1.5, 0.5), parse_thresholds(["device_j:1%"]))
    assert mixed.status == "regressed" and not mixed.improvements


def test_a_device_that_no_longer_fits_its_memory_is_a_regression_under_the_defaults() -> None:
    """Less memory in a profile changes no joule, yet the plan cannot run: it fails."""
    old = energy(1.0, 1.0)
    new = energy(1.0, 1.0, fits=False)
    result = compare_energy(old, new, parse_thresholds(DEFAULT_FAIL_ON))
    assert [f.metric.name for f in result.regressions] == ["unfit_devices"]
    assert result.regressions[0].headline() == (
        "unfit_devices grew past 0: 0 devices -> 2 devices (+inf%)")
