"""The figures every per-device energy record carries (no torch, no pytest).

:class:`EnergyTerms` are the three terms an energy model returns (a picture's bar extends
them). An estimate's :class:`~pytest_edgeenergy.energy.DeviceEnergy` and a case record's
:class:`~pytest_edgeenergy.records.DeviceResult` both extend :class:`DeviceFigures`, so the
record copies the estimate's figures by this one field list (:func:`figures_of`). Fields are
keyword-only: a positional call would depend on the order in which the classes add theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["DeviceFigures", "EnergyTerms", "figures_of"]


@dataclass(frozen=True, slots=True)
class EnergyTerms:
    """One device's energy in joules, split into what it computed, sent and idled."""

    compute_j: float
    comm_j: float
    static_j: float

    @property
    def total_j(self) -> float:
        """``compute_j + comm_j + static_j``."""
        return self.compute_j + self.comm_j + self.static_j


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceFigures:
    """One device's times, joules and counts in one inference. Units are in the names.

    ``fits`` says whether its planned peak memory (weights plus the most activation bytes held
    at once) is within its profile's ``memory_bytes``.
    """

    busy_s: float
    comm_s: float
    compute_j: float
    comm_j: float
    static_j: float
    total_j: float
    macs: int
    bytes_sent: int
    bytes_received: int
    peak_bytes: int
    fits: bool


def figures_of(record: DeviceFigures) -> dict[str, Any]:
    """The :class:`DeviceFigures` fields of ``record`` (of any subclass), by name."""
    return {f.name: getattr(record, f.name) for f in fields(DeviceFigures)}
