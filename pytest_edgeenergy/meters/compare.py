"""Measured beside estimated: one row per measured device of a case, with the ratio.

The meter measures the machine it runs on, above its idle baseline (:mod:`.measure`); the
energy model's comparable figure is the energy *above idle* it estimates for the same
devices: compute plus communication joules (static joules are the idle power over the
makespan, which the baseline took out of the measurement). With the local backend every
device of the cluster runs on this one machine: the row covers all of them, and its
estimate is their sum (:func:`local_row`).

The estimate prices the *profiled* devices (e.g. four Raspberry Pi 4), while the local
backend runs on this host: the ratio says how far this host is from the profile, and it is
a check of the model only when the inference runs on the profiled board itself (or the
profile was calibrated on this host with ``calibrate --meter``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tabulate import tabulate

from .measure import MeasuredEnergy

__all__ = ["HEADERS", "MeasuredRow", "MeterStatus", "local_row", "measured_section"]

HEADERS: tuple[str, ...] = ("case", "measured on", "measured J", "estimated J",
                            "measured / estimated", "idle W", "windows", "rel. std. error")
"""The columns of the measured-vs-estimated table."""


@dataclasses.dataclass(frozen=True)
class MeasuredRow:
    """One measured device (or machine) of one case, beside its estimate."""

    case: str
    device: str
    measured_j: float  # per inference, above idle
    estimated_j: float  # compute + communication, the same devices
    idle_w: float
    windows: int
    rse: float | None
    stable: bool
    how: str

    @property
    def ratio(self) -> float | None:
        """Measured over estimated (None when the estimate is 0)."""
        return self.measured_j / self.estimated_j if self.estimated_j else None

    def cells(self) -> list[str]:
        """The row as the table shows it."""
        ratio = "-" if self.ratio is None else f"{self.ratio:.3g}"
        rse = "-" if self.rse is None else f"{self.rse:.1%}"
        return [self.case, self.device, f"{self.measured_j:.4g}", f"{self.estimated_j:.4g}",
                ratio, f"{self.idle_w:.3g}", str(self.windows),
                rse + ("" if self.stable else " (NOT STABLE)")]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (with the ratio, for readers of the file)."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeasuredRow:
        """Restore from :meth:`to_dict` output."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


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


def measured_section(status: MeterStatus | None, rows: Iterable[MeasuredRow],
                     markdown: bool = False) -> str:
    """The report's "measured beside estimated" section ("" when no meter was asked for)."""
    if status is None:
        return ""
    heading = f"measured beside estimated (meter {status.spec})"
    if not status.ok:
        body = f"meter {status.spec!r} unavailable: {status.reason}; nothing was measured"
        return f"## {heading}\n\n{body}\n" if markdown else f"{heading}\n{body}\n"
    ordered = sorted(rows, key=lambda r: (r.case, r.device))
    notes = [
        "measured J: energy per inference above the idle baseline, from the meter; estimated "
        "J: the energy model's compute + communication joules of the same devices (its static "
        "joules are the idle power the baseline removed).",
        "With the local backend the whole machine is the one device measured: every device of "
        "the cluster runs on it, so its estimate is their sum, priced with the profiles' "
        "figures, not this host's.",
    ]
    if ordered:
        notes.append(f"How: {ordered[0].how}")
    if not ordered:
        return (f"## {heading}\n\nno case was measured\n" if markdown
                else f"{heading}\nno case was measured\n")
    table = tabulate([r.cells() for r in ordered], headers=HEADERS,
                     tablefmt="github" if markdown else "simple", disable_numparse=True)
    if markdown:
        return f"## {heading}\n\n{table}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return f"{heading}\n{table}\n" + "\n".join(notes) + "\n"
