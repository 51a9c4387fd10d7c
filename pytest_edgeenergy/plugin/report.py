"""The comparison report: tables of every strategy per model and cluster, and the files.

One :class:`Report` is built from the session's cases; the terminal summary, the Markdown,
JSON and CSV files all come from it, so every output shows the same numbers. Strategies are
ranked within each (model, cluster, input shape, energy model) group: those whose every device
fits its memory first, then by the largest per-device energy (the device that drains first),
then by total energy. Cases that failed (not equivalent, or an error) are listed, not ranked.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tabulate import tabulate

from ..atomic import file_mode, write_atomic
from .results import CaseEnergy, CaseResult

__all__ = [
    "REPORT_FORMAT",
    "BaselineSection",
    "GroupReport",
    "Report",
    "build_report",
    "file_mode",
    "format_number",
    "group_title",
    "write_atomic",
    "write_reports",
]

REPORT_FORMAT = "pytest-edgeenergy-report/1"
"""The ``format`` field of the JSON report."""

MB = 1e6

_SUMMARY_HEADERS = ("strategy", "rank", "max device J", "mean device J", "total J", "comm MB",
                    "peak MB/device", "fits", "makespan s", "halo recompute")
_DEVICE_HEADERS = ("device", "profile", "compute J", "comm J", "static J", "total J", "busy s",
                   "comm s", "sent MB", "received MB", "peak MB", "fits")


_TIMING_HEADERS = ("case", "device", "busy s measured", "busy s simulated", "comm s measured",
                   "comm s simulated", "makespan s measured", "makespan s simulated")


def timing_rows(cases: Sequence[CaseResult]) -> list[list[str]]:
    """One row per device of every case with a measured timeline; the makespans on the
    first row of each case."""
    rows: list[list[str]] = []
    for case in cases:
        t = case.timing or {}
        for d, (bm, bs, cm, cs) in enumerate(zip(t["measured_busy_s"], t["simulated_busy_s"],
                                                 t["measured_comm_s"], t["simulated_comm_s"],
                                                 strict=True)):
            first = d == 0
            rows.append([f"{case.model} {case.strategy} {case.cluster}" if first else "",
                         str(d), _num(bm), _num(bs), _num(cm), _num(cs),
                         _num(t["measured_makespan_s"]) if first else "",
                         _num(t["simulated_makespan_s"]) if first else ""])
    return rows


def _num(value: float) -> str:
    """Four significant figures, never in exponent form for ordinary magnitudes."""
    if value == 0:
        return "0"
    return f"{value:.4g}" if 1e-4 <= abs(value) < 1e6 else f"{value:.3e}"


def _mb(value: int) -> str:
    return _num(value / MB)


def format_number(value: float) -> str:
    """A figure as every table shows it: four significant figures."""
    return _num(value)


def group_title(model: str, cluster: str, input_shape: tuple[int, ...],
                energy_model: str) -> str:
    """A comparison group's heading: ``tinycnn on 4xrpi4 (input 1x3x32x32, energy model
    board)``."""
    shape = "x".join(map(str, input_shape))
    return f"{model} on {cluster} (input {shape}, energy model {energy_model})"


@dataclasses.dataclass(frozen=True)
class Row:
    """One strategy in one group: its case and its rank (``None`` when it failed)."""

    case: CaseResult
    rank: int | None


@dataclasses.dataclass(frozen=True)
class GroupReport:
    """The strategies compared on one model, cluster, input shape and energy model."""

    model: str
    cluster: str
    input_shape: tuple[int, ...]
    energy_model: str
    rows: tuple[Row, ...]

    @property
    def title(self) -> str:
        """E.g. ``tinycnn on 4xrpi4 (input 1x3x32x32, energy model board)``."""
        return group_title(self.model, self.cluster, self.input_shape, self.energy_model)

    @property
    def ranked(self) -> list[Row]:
        """The rows that have a rank, best first."""
        return sorted((r for r in self.rows if r.rank is not None),
                      key=lambda r: (r.rank, r.case.strategy))

    @property
    def best(self) -> CaseResult | None:
        """The best strategy's case, if any passed."""
        ranked = self.ranked
        return ranked[0].case if ranked else None

    @property
    def worst(self) -> CaseResult | None:
        """The worst ranked strategy's case, if any passed."""
        ranked = self.ranked
        return ranked[-1].case if ranked else None

    def summary_rows(self) -> list[list[str]]:
        """The table's rows, as text, best first and failed cases last."""
        out: list[list[str]] = []
        for row in [*self.ranked, *(r for r in self.rows if r.rank is None)]:
            out.append(_summary_cells(row, row.rank == 1))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the group and, per strategy, its rank and figures."""
        best = self.best
        return {
            "model": self.model, "cluster": self.cluster, "input_shape": list(self.input_shape),
            "energy_model": self.energy_model,
            "best": None if best is None else best.strategy,
            "worst": None if self.worst is None else self.worst.strategy,
            "rows": [{"strategy": r.case.strategy, "rank": r.rank, "key": r.case.key,
                      "status": r.case.status} for r in self.rows],
        }


def _summary_cells(row: Row, best: bool) -> list[str]:
    case, energy = row.case, row.case.energy
    rank = "-" if row.rank is None else f"{row.rank} (best)" if best else str(row.rank)
    if energy is None:
        return [case.strategy, rank, *["-"] * 7, case.status.upper()]
    halo = f"{energy.redundant_macs_pct:.2f}%" if energy.redundant_macs else "-"
    fits = "yes" if energy.fits else "no: device " + ",".join(
        str(d.index) for d in energy.devices if not d.fits)
    status = "" if case.ok else f" [{case.status.upper()}]"
    return [case.strategy + status, rank, _num(energy.max_device_j),
            _num(energy.mean_device_j), _num(energy.total_j), _mb(energy.comm_bytes),
            _mb(energy.max_peak_bytes), fits, _num(energy.makespan_s), halo]


def device_rows(energy: CaseEnergy) -> list[list[str]]:
    """The per-device breakdown of one case, as text."""
    return [[f"{d.index}{' (idle)' if d.idle else ''}", d.profile, _num(d.compute_j),
             _num(d.comm_j), _num(d.static_j), _num(d.total_j), _num(d.busy_s), _num(d.comm_s),
             _mb(d.bytes_sent), _mb(d.bytes_received), _mb(d.peak_bytes),
             "yes" if d.fits else "no"] for d in energy.devices]


def _rank(cases: Sequence[CaseResult]) -> tuple[Row, ...]:
    def order(c: CaseResult) -> tuple[bool, float, float]:
        assert c.energy is not None
        return (not c.energy.fits, c.energy.max_device_j, c.energy.total_j)

    good = [c for c in cases if c.ok]
    rows = [Row(c, 1 + sum(order(o) < order(c) for o in good)) for c in good]
    rows += [Row(c, None) for c in cases if not c.ok]
    return tuple(rows)


class BaselineSection(Protocol):
    """The comparison with the baseline, as the report shows it (see :mod:`.tracking`)."""

    def to_markdown(self) -> str:
        """A Markdown section (empty when there is nothing to say)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        ...


@dataclasses.dataclass(frozen=True)
class Report:
    """Every group of a session, the cases that failed, and the baseline comparison."""

    groups: tuple[GroupReport, ...]
    cases: tuple[CaseResult, ...]
    failures: tuple[CaseResult, ...]
    baseline: BaselineSection | None = None

    def is_empty(self) -> bool:
        """Whether no case was recorded."""
        return not self.cases and not self.failures

    def _sections(self, fmt: str) -> list[tuple[str, str]]:
        """(heading, table) pairs in the order every text format shows them."""
        sections: list[tuple[str, str]] = []
        for group in self.groups:
            table = tabulate(group.summary_rows(), headers=_SUMMARY_HEADERS, tablefmt=fmt,
                             disable_numparse=True)
            sections.append((group.title, table))
            shown: list[tuple[str, CaseResult]] = []
            if group.best is not None:
                shown.append(("best", group.best))
            if group.worst is not None and group.worst is not group.best:
                shown.append(("worst", group.worst))
            for label, case in shown:
                assert case.energy is not None
                table = tabulate(device_rows(case.energy), headers=_DEVICE_HEADERS, tablefmt=fmt,
                                 disable_numparse=True)
                sections.append((f"{group.model} on {group.cluster}: per device, {label} "
                                 f"strategy {case.strategy}", table))
        timed = [c for c in self.cases if c.timing is not None]
        if timed:
            table = tabulate(timing_rows(timed), headers=_TIMING_HEADERS, tablefmt=fmt,
                             disable_numparse=True)
            sections.append(("measured (gloo timeline) against simulated times, per device", table))
        return sections

    def failure_lines(self) -> list[str]:
        """One line per failed case: node id, status and the first line of the message."""
        return [f"{c.nodeid}: {c.status}: {c.message.splitlines()[0] if c.message else ''}"
                for c in self.failures]

    def to_text(self) -> str:
        """The report as the terminal shows it."""
        parts = []
        for heading, table in self._sections("simple"):
            parts.append(f"{heading}\n{table}")
        if self.failures:
            parts.append("equivalence failures and errors:\n" + "\n".join(
                "  " + line for line in self.failure_lines()))
        parts.append("rank: strategies whose devices all fit their memory first, then by "
                     "the largest per-device energy (J); halo recompute: MACs beyond the "
                     "unpartitioned model's")
        return "\n\n".join(parts)

    def to_markdown(self) -> str:
        """The report as Markdown, for a CI job summary."""
        parts = ["# Edge energy report"]
        for heading, table in self._sections("github"):
            level = "###" if ": per device" in heading else "##"
            parts.append(f"{level} {heading}\n\n{table}")
        if self.failures:
            parts.append("## Equivalence failures and errors\n\n" + "\n".join(
                f"- `{c.nodeid}`: {c.status}: "
                f"{c.message.splitlines()[0] if c.message else ''}" for c in self.failures))
        if self.baseline is not None and self.baseline.to_markdown():
            parts.append(self.baseline.to_markdown().rstrip("\n"))
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: every case with every number, the groups, the failures."""
        return {
            "format": REPORT_FORMAT,
            "groups": [g.to_dict() for g in self.groups],
            "cases": [c.to_dict() for c in self.cases],
            "failures": [c.to_dict() for c in self.failures],
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
        }

    def to_json(self) -> str:
        """The JSON report as text, keys sorted so it diffs well."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        """One CSV row per case, with raw numbers (joules, seconds, bytes)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["model", "cluster", "input_shape", "energy_model", "strategy", "rank",
                         "best", "status", "max_device_j", "mean_device_j", "total_j",
                         "comm_bytes", "max_peak_bytes", "fits", "makespan_s", "redundant_macs",
                         "redundant_macs_pct", "key"])
        for group in self.groups:
            best = group.best
            for row in [*group.ranked, *(r for r in group.rows if r.rank is None)]:
                c, e = row.case, row.case.energy
                figures: list[object] = (["", "", "", "", "", "", "", "", ""] if e is None else [
                    repr(e.max_device_j), repr(e.mean_device_j), repr(e.total_j), e.comm_bytes,
                    e.max_peak_bytes, e.fits, repr(e.makespan_s), e.redundant_macs,
                    repr(e.redundant_macs_pct)])
                writer.writerow([c.model, c.cluster, "x".join(map(str, c.input_shape)),
                                 c.energy_model, c.strategy,
                                 "" if row.rank is None else row.rank, c is best, c.status,
                                 *figures, c.key])
        return buffer.getvalue()

    def render(self, path: Path) -> str:
        """The report in the format ``path``'s suffix names."""
        suffix = path.suffix.lower()
        if suffix == ".md":
            return self.to_markdown()
        if suffix == ".json":
            return self.to_json()
        if suffix == ".csv":
            return self.to_csv()
        raise ValueError(f"unknown report suffix {suffix!r} of {path}")


def build_report(cases: Iterable[CaseResult], failures: Iterable[CaseResult]) -> Report:
    """Group the cases, rank each group's strategies, list the failures."""
    by_group: dict[tuple[str, str, tuple[int, ...], str], list[CaseResult]] = {}
    all_cases = list(cases)
    for case in all_cases:
        by_group.setdefault(case.group, []).append(case)

    def group_order(key: tuple[str, str, tuple[int, ...], str]) -> tuple[Any, ...]:
        model, cluster, shape, energy_model = key
        energy = by_group[key][0].energy
        count = len(energy.devices) if energy is not None else 0
        return (model, count, cluster, shape, energy_model)

    groups = tuple(
        GroupReport(key[0], key[1], key[2], key[3],
                    _rank(sorted(by_group[key], key=lambda c: c.strategy)))
        for key in sorted(by_group, key=group_order))
    return Report(groups, tuple(all_cases), tuple(failures))


def write_reports(report: Report, paths: Iterable[Path]) -> list[str]:
    """Write the report to each path; return one error line per file that failed."""
    errors = []
    for path in paths:
        try:
            write_atomic(path, report.render(path))
        except OSError as exc:
            errors.append(f"could not write the edge energy report {path}: {exc.strerror or exc}")
    return errors
