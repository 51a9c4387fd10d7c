"""Measured beside estimated: one row per measured device of a case, with the ratio.

The meter measures the machine it runs on, above its idle baseline (:mod:`.measure`); the
energy model's comparable figure is the energy *above idle* it estimates for the same
devices: compute plus communication joules (static joules are the idle power over the
makespan, which the baseline took out of the measurement). With the local backend every
device of the cluster runs on this one machine: the row covers all of them, and its
estimate is their sum (:func:`local_row`). With the gloo backend each rank measured the
machine it runs on with its own meter, in step with the others: one row per device, beside
that device's own estimate, or saying why the device was not measured (:func:`rank_rows`).

The estimate prices the *profiled* devices (e.g. four Raspberry Pi 4), while the local
backend runs on this host: the ratio says how far this host is from the profile, and it is
a check of the model only when the inference runs on the profiled board itself (or the
profile was calibrated on this host with ``calibrate --meter``).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tabulate import tabulate

from .measure import MeasuredEnergy
from .ranks import ShareMeasurement

__all__ = ["HEADERS", "MeasuredRow", "MeterStatus", "local_row", "measured_section",
           "rank_rows"]

HEADERS: tuple[str, ...] = ("case", "measured on", "measured J", "estimated J",
                            "measured / estimated", "idle W", "windows", "rel. std. error")
"""The columns of the measured-vs-estimated table."""


@dataclasses.dataclass(frozen=True)
class MeasuredRow:
    """One measured device (or machine) of one case, beside its estimate."""

    case: str
    device: str
    measured_j: float | None  # per inference, above idle (None: not measured, see reason)
    estimated_j: float  # compute + communication, the same devices
    idle_w: float | None
    windows: int
    rse: float | None
    stable: bool
    how: str
    reason: str = ""  # why the device was not measured (its rank's meter was unavailable)

    @property
    def ratio(self) -> float | None:
        """Measured over estimated (None when not measured or the estimate is 0)."""
        if self.measured_j is None or not self.estimated_j:
            return None
        return self.measured_j / self.estimated_j

    def cells(self) -> list[str]:
        """The row as the table shows it."""
        if self.measured_j is None:
            return [self.case, self.device, "unavailable", f"{self.estimated_j:.4g}", "-", "-",
                    "-", "-"]
        ratio = "-" if self.ratio is None else f"{self.ratio:.3g}"
        rse = "-" if self.rse is None else f"{self.rse:.1%}"
        idle = "-" if self.idle_w is None else f"{self.idle_w:.3g}"
        return [self.case, self.device, f"{self.measured_j:.4g}", f"{self.estimated_j:.4g}",
                ratio, idle, str(self.windows), rse + ("" if self.stable else " (NOT STABLE)")]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (with the ratio, for readers of the file)."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeasuredRow:
        """Restore from :meth:`to_dict` output."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass(frozen=True)
class MeterStatus:
    """The meter a run asked for, and whether it could measure here (``reason`` says why
    not, or what it reads)."""

    spec: str
    ok: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dataclasses.asdict(self)


def local_row(case: str, devices: Sequence[tuple[float, float]],
              measured: MeasuredEnergy) -> MeasuredRow:
    """The row of a case run by the local backend: ``devices`` are each device's estimated
    (compute_j, comm_j); the measurement covers all of them on this host."""
    n = len(devices)
    label = f"devices 0-{n - 1} on this host (local backend)" if n > 1 else \
        "device 0 on this host (local backend)"
    rse = measured.rse
    return MeasuredRow(
        case=case, device=label, measured_j=measured.net_j,
        estimated_j=sum(c + m for c, m in devices), idle_w=measured.idle_w,
        windows=len(measured.active.values), rse=rse if math.isfinite(rse) else None,
        stable=measured.stable, how=measured.describe())


def rank_rows(case: str, devices: Sequence[tuple[float, float]],
              shares: Iterable[ShareMeasurement]) -> list[MeasuredRow]:
    """The rows of a case run by the gloo backend: ``devices`` are each device's estimated
    (compute_j, comm_j); each share is what the rank playing that device measured."""
    shares = sorted(shares, key=lambda s: s.device)
    per_host = collections.Counter(s.host for s in shares)
    rows = []
    for share in shares:
        compute_j, comm_j = devices[share.device]
        shared = ", shared with other ranks" if per_host[share.host] > 1 else ""
        label = f"device {share.device} (rank {share.device}, host {share.host}{shared})"
        measured = share.measured
        if measured is None:
            rows.append(MeasuredRow(case, label, None, compute_j + comm_j, None, 0, None, False,
                                    "", share.reason or "not measured"))
            continue
        rse = measured.rse
        rows.append(MeasuredRow(
            case=case, device=label, measured_j=measured.net_j, estimated_j=compute_j + comm_j,
            idle_w=measured.idle_w, windows=len(measured.active.values),
            rse=rse if math.isfinite(rse) else None, stable=measured.stable,
            how=measured.describe()))
    return rows


def _notes(rows: Sequence[MeasuredRow], status: MeterStatus) -> list[str]:
    """What the table's figures mean, for the kinds of rows it holds."""
    notes = [
        "measured J: energy per inference above the idle baseline, from the meter; estimated "
        "J: the energy model's compute + communication joules of the same devices (its static "
        "joules are the idle power the baseline removed).",
    ]
    if any("(local backend)" in r.device for r in rows):
        notes.append(
            "With the local backend the whole machine is the one device measured: every device "
            "of the cluster runs on it, so its estimate is their sum, priced with the profiles' "
            "figures, not this host's.")
    if any("(rank " in r.device for r in rows):
        notes.append(
            "With the gloo backend each rank measured the machine it runs on with its own meter, "
            "in step with the other ranks (the same idle and inference windows for all), beside "
            "its own device's estimate; ranks that share a host each measured that whole host, "
            "so their figures overlap.")
        if not status.ok:
            notes.append(f"(The meter is unavailable in the process that ran pytest: "
                         f"{status.reason}.)")
    measured = [r for r in rows if r.measured_j is not None]
    if measured:
        notes.append(f"How: {measured[0].how}")
    notes += [f"Not measured: {r.case}, {r.device}: {r.reason}" for r in rows
              if r.measured_j is None]
    return notes


def measured_section(status: MeterStatus | None, rows: Iterable[MeasuredRow],
                     markdown: bool = False) -> str:
    """The report's "measured beside estimated" section ("" when no meter was asked for)."""
    if status is None:
        return ""
    heading = f"measured beside estimated (meter {status.spec})"
    ordered = sorted(rows, key=lambda r: (r.case, r.device))
    if not status.ok and not ordered:
        body = f"meter {status.spec!r} unavailable: {status.reason}; nothing was measured"
        return f"## {heading}\n\n{body}\n" if markdown else f"{heading}\n{body}\n"
    notes = _notes(ordered, status)
    if not ordered:
        return (f"## {heading}\n\nno case was measured\n" if markdown
                else f"{heading}\nno case was measured\n")
    table = tabulate([r.cells() for r in ordered], headers=HEADERS,
                     tablefmt="github" if markdown else "simple", disable_numparse=True)
    if markdown:
        return f"## {heading}\n\n{table}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return f"{heading}\n{table}\n" + "\n".join(notes) + "\n"
