"""Metrics a baseline comparison watches, the ``--edge-fail-on`` thresholds, and the comparison.

A threshold is written ``METRIC:LIMIT``, as pytest-benchmark's ``--benchmark-compare-fail``
is: ``max_device_j:2%`` fails when the largest per-device energy grows by more than 2 % of
the baseline's figure, ``comm_bytes:0`` when the bytes sent between devices grow at all (an
absolute limit, in the metric's own unit). A figure that shrinks by more than its limit is an
improvement. Case metrics are one number per case; ``device_*`` metrics are checked on every
device against the same device in the baseline.

:func:`compare_energy` compares the figures of one case with its baseline entry and returns a
:class:`Comparison`: one :class:`Finding` per threshold whose metric moved past its limit.
Everything here is a pure function of the figures.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Sequence

from .format import format_change, format_value, relative_change
from .results import CaseEnergy, DeviceResult

__all__ = [
    "DEFAULT_FAIL_ON",
    "METRICS",
    "Comparison",
    "DeviceChange",
    "Finding",
    "Metric",
    "Threshold",
    "ThresholdError",
    "compare_energy",
    "parse_thresholds",
]


@dataclasses.dataclass(frozen=True)
class Metric:
    """A figure of a case that a threshold can watch.

    ``field`` is the attribute of :class:`~.results.CaseEnergy` (a case metric) or of
    :class:`~.results.DeviceResult` (a ``device_*`` metric, checked per device).
    ``device_field`` is the per-device figure shown under a case metric's failure, so the
    message says which device moved (``None`` where no per-device figure adds up to it).
    """

    name: str
    field: str
    unit: str
    per_device: bool
    description: str
    device_field: str | None = None


def _case(name: str, unit: str, description: str, device_field: str | None = None) -> Metric:
    return Metric(name, name, unit, False, description, device_field)


def _device(name: str, field: str, unit: str, description: str) -> Metric:
    return Metric(name, field, unit, True, description, field)


METRICS: dict[str, Metric] = {m.name: m for m in (
    _case("max_device_j", "J", "the largest per-device energy (the battery that drains first)",
          "total_j"),
    _case("mean_device_j", "J", "the mean per-device energy", "total_j"),
    _case("total_j", "J", "the energy of all devices together", "total_j"),
    _case("makespan_s", "s", "the modelled latency of one inference"),
    _case("comm_bytes", "bytes", "the bytes sent between devices", "bytes_sent"),
    _case("max_peak_bytes", "bytes", "the largest per-device peak memory", "peak_bytes"),
    _case("redundant_macs", "MACs", "MACs beyond the unpartitioned model's (halo recompute)",
          "macs"),
    _case("unfit_devices", "devices", "devices whose peak memory exceeds their memory",
          "peak_bytes"),
    _device("device_j", "total_j", "J", "each device's energy"),
    _device("device_compute_j", "compute_j", "J", "each device's compute energy"),
    _device("device_comm_j", "comm_j", "J", "each device's communication energy"),
    _device("device_static_j", "static_j", "J", "each device's static (idle power) energy"),
    _device("device_busy_s", "busy_s", "s", "each device's modelled compute time"),
    _device("device_macs", "macs", "MACs", "each device's multiply-accumulates"),
    _device("device_bytes_sent", "bytes_sent", "bytes", "the bytes each device sends"),
    _device("device_bytes_received", "bytes_received", "bytes",
            "the bytes each device receives"),
    _device("device_peak_bytes", "peak_bytes", "bytes", "each device's peak memory"),
)}
"""Every metric ``--edge-fail-on`` accepts, by name."""

DEFAULT_FAIL_ON: tuple[str, ...] = (
    "device_j:0.1%", "makespan_s:0.1%", "comm_bytes:0", "device_peak_bytes:0",
    "unfit_devices:0")
"""The thresholds used when neither ``--edge-fail-on`` nor the ini key names any.

The figures are exact (a pure function of plan and profiles, no timing noise), so a limit
needs no room for noise: it only says how large a real change must be to stop CI. 0.1 % is
the resolution the report prints (four significant figures), so every change a reader could
see in the table fails; bytes and memory are integers of the plan, so any growth fails, and a
device that no longer fits its memory (a plan that cannot run) fails whatever the joules.
``device_j`` checks each device, so a change that moves work onto one device fails even when
the largest or the total figure hides it; it also bounds ``max_device_j`` and ``total_j``.
"""

NONE = "none"
"""The ``--edge-fail-on`` value that turns every threshold off (changes are still reported)."""


class ThresholdError(ValueError):
    """A ``--edge-fail-on`` expression that cannot be read; the message says why."""


@dataclasses.dataclass(frozen=True)
class Threshold:
    """``METRIC:LIMIT``: how far a metric may grow (or shrink, for an improvement).

    ``relative`` limits are percentages of the baseline's figure; absolute ones are in the
    metric's unit. Growth past the limit is a regression, shrinkage past it an improvement.
    """

    metric: Metric
    limit: float
    relative: bool

    @property
    def text(self) -> str:
        """The threshold as written, e.g. ``device_j:0.1%``."""
        return f"{self.metric.name}:{_limit_text(self.limit)}{'%' if self.relative else ''}"

    def _past(self, step: float) -> bool:
        # A change exactly at the limit is within it, whatever the float rounding of the
        # subtraction (1.02 - 1.0 is 0.02000000000000018).
        return step > self.limit and not math.isclose(step, self.limit, rel_tol=1e-9)

    def grew(self, old: float, new: float) -> bool:
        """Whether ``new`` is worse than ``old`` by more than the limit."""
        if self.relative:
            return self._past(relative_change(old, new) * 100.0)
        return self._past(new - old)

    def shrank(self, old: float, new: float) -> bool:
        """Whether ``new`` is better than ``old`` by more than the limit."""
        if self.relative:
            return self._past(-relative_change(old, new) * 100.0)
        return self._past(old - new)


def _limit_text(limit: float) -> str:
    return f"{limit:g}"


_NUMBER = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


def valid_metrics_text() -> str:
    """The valid metric names, for error messages."""
    return ", ".join(METRICS)


def parse_threshold(text: str) -> Threshold:
    """Read one ``METRIC:LIMIT`` expression; raise :class:`ThresholdError` saying what is wrong."""
    item = text.strip()
    metric_name, colon, limit_text = item.partition(":")
    metric_name, limit_text = metric_name.strip(), limit_text.strip()
    if not colon or not metric_name:
        raise ThresholdError(f"'{item}' is not METRIC:LIMIT")
    metric = METRICS.get(metric_name)
    if metric is None:
        close = difflib.get_close_matches(metric_name, list(METRICS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ThresholdError(f"names an unknown metric '{metric_name}'{hint}")
    relative = limit_text.endswith("%")
    number = limit_text.removesuffix("%").strip()
    if not _NUMBER.fullmatch(number):
        raise ThresholdError(f"has a bad limit '{limit_text}' for {metric_name}")
    limit = float(number)
    if not math.isfinite(limit):
        raise ThresholdError(f"has a limit that is not finite: '{limit_text}'")
    return Threshold(metric, limit, relative)


def parse_thresholds(items: Iterable[str]) -> tuple[Threshold, ...]:
    """Read the expressions of ``--edge-fail-on`` (each may hold several, comma-separated).

    ``none`` alone means no thresholds. A metric named twice is an error: which limit was
    meant would be a guess.
    """
    parts = [p.strip() for item in items for p in item.replace("\n", ",").split(",")]
    parts = [p for p in parts if p]
    if not parts:
        raise ThresholdError("names no threshold")
    if [p.lower() for p in parts] == [NONE]:
        return ()
    if NONE in (p.lower() for p in parts):
        raise ThresholdError(f"'{NONE}' cannot be combined with thresholds")
    thresholds: dict[str, Threshold] = {}
    for part in parts:
        threshold = parse_threshold(part)
        if threshold.metric.name in thresholds:
            raise ThresholdError(f"names the metric '{threshold.metric.name}' twice")
        thresholds[threshold.metric.name] = threshold
    return tuple(thresholds.values())


@dataclasses.dataclass(frozen=True)
class DeviceChange:
    """One device's figure before and after."""

    index: int
    profile: str
    old: float
    new: float
    past_limit: bool  # whether this device's own change is past the threshold

    def describe(self, unit: str) -> str:
        """``device 1 (rpi4): 0.002 J -> 0.0021 J (+5%)``."""
        return (f"device {self.index} ({self.profile}): {format_value(self.old, unit)} -> "
                f"{format_value(self.new, unit)} ({format_change(self.old, self.new)})")


@dataclasses.dataclass(frozen=True)
class Finding:
    """A threshold whose metric moved past its limit, one way or the other.

    For a case metric ``old``/``new`` are the case's figures and ``devices`` shows the
    per-device figure behind it; for a ``device_*`` metric, ``old``/``new`` are those of the
    device that moved most and ``devices`` lists every device.
    """

    threshold: Threshold
    regression: bool  # False: an improvement
    old: float
    new: float
    devices: tuple[DeviceChange, ...] = ()

    @property
    def metric(self) -> Metric:
        """The metric that moved."""
        return self.threshold.metric

    def headline(self) -> str:
        """``device_j grew past 0.1%: device 0 (rpi4): ... (+2.4%)`` and the like."""
        verb = "grew" if self.regression else "shrank"
        unit = self.metric.unit
        limit = f"{verb} past {self.threshold.text.split(':', 1)[1]}"
        if self.metric.per_device:
            moved = [d for d in self.devices if d.past_limit]
            return (f"{self.metric.name} {limit} on {_devices_text(moved)} (most: "
                    f"{format_value(self.old, unit)} -> {format_value(self.new, unit)}, "
                    f"{format_change(self.old, self.new)})")
        return (f"{self.metric.name} {limit}: {format_value(self.old, unit)} -> "
                f"{format_value(self.new, unit)} ({format_change(self.old, self.new)})")

    def lines(self) -> list[str]:
        """The headline, then one line per device (those past the limit marked)."""
        unit = self.metric.unit if self.metric.per_device else _device_unit(self.metric)
        out = [self.headline()]
        for device in self.devices:
            mark = "  <- past the limit" if self.metric.per_device and device.past_limit else ""
            out.append(f"  {device.describe(unit)}{mark}")
        return out


def _device_unit(metric: Metric) -> str:
    return {"total_j": "J", "bytes_sent": "bytes", "peak_bytes": "bytes",
            "macs": "MACs"}.get(metric.device_field or "", metric.unit)


def _devices_text(devices: Sequence[DeviceChange]) -> str:
    names = [f"{d.index} ({d.profile})" for d in devices]
    return ("device " if len(names) == 1 else "devices ") + ", ".join(names)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The findings of one case against its baseline entry."""

    findings: tuple[Finding, ...]
    changed: bool  # whether any compared figure differs at all, past a limit or not

    @property
    def regressions(self) -> tuple[Finding, ...]:
        """Findings of growth past the limit."""
        return tuple(f for f in self.findings if f.regression)

    @property
    def improvements(self) -> tuple[Finding, ...]:
        """Findings of shrinkage past the limit."""
        return tuple(f for f in self.findings if not f.regression)

    @property
    def status(self) -> str:
        """``regressed``, ``improved``, ``changed`` (within the limits) or ``unchanged``."""
        if self.regressions:
            return "regressed"
        if self.improvements:
            return "improved"
        return "changed" if self.changed else "unchanged"


COMPARED_CASE_FIELDS: tuple[str, ...] = (
    "makespan_s", "max_device_j", "mean_device_j", "total_j", "comm_bytes", "graph_macs",
    "redundant_macs")
"""The case figures whose change makes a case ``changed`` even within every limit."""

COMPARED_DEVICE_FIELDS: tuple[str, ...] = (
    "busy_s", "comm_s", "compute_j", "comm_j", "static_j", "total_j", "macs", "bytes_sent",
    "bytes_received", "peak_bytes", "memory_bytes", "fits", "idle")
"""The per-device figures whose change makes a case ``changed``."""


def _device_changes(old: Sequence[DeviceResult], new: Sequence[DeviceResult], field: str,
                    threshold: Threshold | None) -> tuple[DeviceChange, ...]:
    out = []
    for before, after in zip(old, new, strict=False):
        a, b = getattr(before, field), getattr(after, field)
        past = threshold is not None and (threshold.grew(a, b) or threshold.shrank(a, b))
        out.append(DeviceChange(after.index, after.profile, a, b, past))
    return tuple(out)


def _check(threshold: Threshold, old: CaseEnergy, new: CaseEnergy) -> Finding | None:
    metric = threshold.metric
    if metric.per_device:
        devices = _device_changes(old.devices, new.devices, metric.field, threshold)
        worse = [d for d in devices if threshold.grew(d.old, d.new)]
        better = [d for d in devices if threshold.shrank(d.old, d.new)]
        if worse:  # a regression on one device outweighs an improvement on another
            top = max(worse, key=lambda d: relative_change(d.old, d.new))
            marked = tuple(dataclasses.replace(d, past_limit=d in worse) for d in devices)
            return Finding(threshold, True, top.old, top.new, marked)
        if better:
            top = min(better, key=lambda d: relative_change(d.old, d.new))
            marked = tuple(dataclasses.replace(d, past_limit=d in better) for d in devices)
            return Finding(threshold, False, top.old, top.new, marked)
        return None
    a, b = getattr(old, metric.field), getattr(new, metric.field)
    if not (threshold.grew(a, b) or threshold.shrank(a, b)):
        return None
    devices = (() if metric.device_field is None
               else _device_changes(old.devices, new.devices, metric.device_field, None))
    return Finding(threshold, threshold.grew(a, b), a, b, devices)


def compare_energy(old: CaseEnergy, new: CaseEnergy,
                   thresholds: Sequence[Threshold]) -> Comparison:
    """Compare one case's figures with its baseline's under ``thresholds``.

    Devices are matched by index (a case's cluster is part of its key, so both have the same
    devices). A changed device count, which a valid baseline cannot hold, counts as a change.
    """
    findings = tuple(f for f in (_check(t, old, new) for t in thresholds) if f is not None)
    changed = (len(old.devices) != len(new.devices)
               or any(getattr(old, f) != getattr(new, f) for f in COMPARED_CASE_FIELDS)
               or any(getattr(a, f) != getattr(b, f)
                      for a, b in zip(old.devices, new.devices, strict=False)
                      for f in COMPARED_DEVICE_FIELDS))
    return Comparison(findings, changed)
