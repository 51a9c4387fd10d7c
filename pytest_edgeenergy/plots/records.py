"""What the pictures are drawn from: plain records, built from a report's JSON form.

:func:`groups_from_report` reads the dict of a ``pytest-edgeenergy-report/1`` report (what
``--edge-report=FILE.json`` writes, and what ``Report.to_dict()`` returns): every comparison
group with each strategy's per-device compute, communication and static joules, and the
robustness of the ranking when the report carries it. :func:`sweeps` finds the groups that
differ only in their device count. :func:`trends_from_runs` turns saved runs into per-case
series for ``history --plot``. Nothing here needs matplotlib.

Robustness is optional: with ``--edge-sensitivity`` a group dict holds ``"robustness"``
(:meth:`pytest_edgeenergy.robustness.Robustness.to_dict`): its ``headline`` and its
``flips``, each the factor of one profile field, nearest to 1, that changes the winner
(``factor`` null when none in range does). A report without it draws no robustness panel;
records of another shape are left out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..figures import EnergyTerms
from ..records.format import GroupId, format_shape, group_title

__all__ = [
    "TERMS",
    "DeviceBar",
    "PlotGroup",
    "RobustnessBar",
    "StrategyBars",
    "Sweep",
    "Trend",
    "groups_from_report",
    "sweeps",
    "trends_from_runs",
]

TERMS: tuple[tuple[str, str], ...] = (
    ("compute_j", "compute"), ("comm_j", "communication"), ("static_j", "static"))
"""The energy terms stacked in each bar (field, legend label), bottom first."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceBar(EnergyTerms):
    """One device's joules in one case, by term (``total_j``: the three added)."""

    index: int
    profile: str


@dataclasses.dataclass(frozen=True)
class StrategyBars:
    """One strategy of a group: its rank (None when it failed) and its devices."""

    strategy: str
    rank: int | None
    devices: tuple[DeviceBar, ...]

    @property
    def max_device_j(self) -> float:
        """The largest per-device energy."""
        return max((d.total_j for d in self.devices), default=0.0)

    @property
    def total_j(self) -> float:
        """Joules over every device."""
        return sum(d.total_j for d in self.devices)


@dataclasses.dataclass(frozen=True)
class RobustnessBar:
    """The factor of profile field ``label`` that changes the ranking's winner (to
    ``new_winner``); None when no factor in the searched range does."""

    label: str
    factor: float | None
    new_winner: str | None


@dataclasses.dataclass(frozen=True)
class PlotGroup(GroupId):
    """The strategies compared on one model, cluster, input shape and energy model."""

    strategies: tuple[StrategyBars, ...]
    robustness: tuple[RobustnessBar, ...] = ()
    robustness_headline: str = ""

    @property
    def n_devices(self) -> int:
        """Devices in the cluster."""
        return max((len(s.devices) for s in self.strategies), default=0)

    @property
    def slug(self) -> str:
        """A file-name-safe name: ``tinycnn__4xrpi4__1x3x32x32__board``."""
        return _slug(self.model, self.cluster, format_shape(self.input_shape), self.energy_model)


def _slug(*parts: str) -> str:
    """``parts`` joined by ``__``, every run of characters unsafe in a file name as ``-``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", "__".join(parts))


def _robustness(group: Mapping[str, Any]) -> tuple[tuple[RobustnessBar, ...], str]:
    raw = group.get("robustness")
    if not isinstance(raw, Mapping) or not isinstance(raw.get("flips"), Sequence):
        return (), ""
    out = []
    for flip in raw["flips"]:
        if not isinstance(flip, Mapping) or not isinstance(flip.get("field"), str):
            continue
        factor = flip.get("factor")
        winner = flip.get("new_winner")
        if factor is not None and (isinstance(factor, bool)
                                   or not isinstance(factor, int | float) or factor <= 0):
            continue
        out.append(RobustnessBar(flip["field"], None if factor is None else float(factor),
                                 winner if isinstance(winner, str) else None))
    headline = raw.get("headline")
    return tuple(out), headline if isinstance(headline, str) else ""


def _bars(case: Mapping[str, Any]) -> tuple[DeviceBar, ...]:
    energy = case.get("energy")
    if not isinstance(energy, Mapping):
        return ()
    return tuple(DeviceBar(index=int(d["index"]), profile=str(d["profile"]),
                           compute_j=float(d["compute_j"]), comm_j=float(d["comm_j"]),
                           static_j=float(d["static_j"]))
                 for d in energy["devices"])


def groups_from_report(report: Mapping[str, Any]) -> list[PlotGroup]:
    """The plot groups of a report's JSON form, strategies best first (failed strategies are
    left out)."""
    cases = {c["key"]: c for c in report.get("cases", ()) if isinstance(c, Mapping)}
    out = []
    for group in report.get("groups", ()):
        strategies = []
        for row in group.get("rows", ()):
            case = cases.get(row.get("key"))
            if case is None or row.get("rank") is None:
                continue
            bars = _bars(case)
            if bars:
                strategies.append(StrategyBars(str(row["strategy"]), int(row["rank"]), bars))
        if strategies:
            strategies.sort(key=lambda s: (s.rank, s.strategy))  # best first, left to right
            flips, headline = _robustness(group)
            out.append(PlotGroup(str(group["model"]), str(group["cluster"]),
                                 tuple(int(s) for s in group["input_shape"]),
                                 str(group["energy_model"]), tuple(strategies), flips,
                                 headline))
    return out


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Groups of one model and device kind that differ only in their device count."""

    model: str
    device: str
    input_shape: tuple[int, ...]
    energy_model: str
    groups: tuple[PlotGroup, ...]  # by device count

    @property
    def title(self) -> str:
        """E.g. ``tinycnn on N x rpi4 (input 1x3x32x32, energy model board)``."""
        return group_title(self.model, f"N x {self.device}", self.input_shape, self.energy_model)

    @property
    def slug(self) -> str:
        """A file-name-safe name."""
        return _slug("sweep", self.model, self.device, format_shape(self.input_shape),
                     self.energy_model)


_HOMOGENEOUS = re.compile(r"(\d+)x([A-Za-z][A-Za-z0-9_.-]*)")


def sweeps(groups: Iterable[PlotGroup]) -> list[Sweep]:
    """The device-count sweeps among ``groups``: homogeneous clusters (``NxDEVICE``) of one
    model, input and energy model, at two or more counts."""
    found: dict[tuple[str, str, tuple[int, ...], str], list[PlotGroup]] = {}
    for group in groups:
        match = _HOMOGENEOUS.fullmatch(group.cluster)
        device = match.group(2) if match else None
        if device is None and len({d.profile for s in group.strategies for d in s.devices}) == 1:
            device = group.strategies[0].devices[0].profile  # a one-device cluster: "rpi4"
        if device is not None:
            key = (group.model, device, group.input_shape, group.energy_model)
            found.setdefault(key, []).append(group)
    return [Sweep(*key, tuple(sorted(members, key=lambda g: g.n_devices)))
            for key, members in sorted(found.items())
            if len({g.n_devices for g in members}) >= 2]


@dataclasses.dataclass(frozen=True)
class Trend:
    """One case's metric over saved runs: (run label, commit label, value) oldest first."""

    case: str
    metric: str
    points: tuple[tuple[str, str, float], ...]


class _Git(Protocol):
    @property
    def commit(self) -> str | None: ...

    @property
    def dirty(self) -> bool | None: ...


class _Run(Protocol):
    """What is read of a saved run (``records.runs.SavedRun``)."""

    @property
    def number(self) -> int | None: ...

    @property
    def git(self) -> _Git: ...

    @property
    def entries(self) -> Mapping[str, Any]: ...


def trends_from_runs(runs: Sequence[_Run], metric: str, case: str | None = None) -> list[Trend]:
    """Each case's ``metric`` (a case-level energy figure) across ``runs``, whose key contains
    ``case``; the commit label is the short commit, ``+`` when the checkout was dirty."""
    keys = sorted({k for r in runs for k in r.entries if case is None or case in k})
    out = []
    for key in keys:
        points = []
        for number, run in enumerate(runs):
            entry = run.entries.get(key)
            if entry is None:
                continue
            commit = (run.git.commit or "no git")[:7] + ("+" if run.git.dirty else "")
            label = f"{run.number:04d}" if run.number is not None else str(number)
            points.append((label, commit, float(getattr(entry.energy, metric))))
        out.append(Trend(key, metric, tuple(points)))
    return out
