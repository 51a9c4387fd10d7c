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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from tabulate import tabulate

from ..errors import EdgeEnergyError
from ..robustness import CaseSensitivity, Robustness, rank_robustness
from .format import MB, GroupId, format_number, format_shape, group_title
from .results import DEFAULT_SCENARIO_TEXT, CaseEnergy, CaseResult, DeviceResult
from .written import Written, write_file

__all__ = [
    "CSV_FIGURES",
    "DEVICE_COLUMNS",
    "REPORT_FORMAT",
    "ROBUSTNESS_CSV",
    "SUMMARY_COLUMNS",
    "BaselineSection",
    "Column",
    "ExtraSection",
    "GroupReport",
    "Report",
    "build_report",
    "group_robustness",
    "group_title",
    "write_reports",
]

REPORT_FORMAT = "pytest-edgeenergy-report/1"
"""The ``format`` field of the JSON report."""

_Row = TypeVar("_Row")

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
                         str(d), format_number(bm), format_number(bs), format_number(cm),
                         format_number(cs),
                         format_number(t["measured_makespan_s"]) if first else "",
                         format_number(t["simulated_makespan_s"]) if first else ""])
    return rows


def _mb(value: int) -> str:
    return format_number(value / MB)


@dataclasses.dataclass(frozen=True)
class Column(Generic[_Row]):
    """One figure column of a table: its header and how a row's figures become its cell.

    Adding a column to the report is one entry in :data:`SUMMARY_COLUMNS` (per case) or
    :data:`DEVICE_COLUMNS` (per device), and one in :data:`CSV_FIGURES` for the CSV file.
    """

    header: str
    cell: Callable[[_Row], str]


def _halo(e: CaseEnergy) -> str:
    return f"{e.redundant_macs_pct:.2f}%" if e.redundant_macs else "-"


def _fits(e: CaseEnergy) -> str:
    return "yes" if e.fits else "no: device " + ",".join(
        str(d.index) for d in e.devices if not d.fits)


SUMMARY_COLUMNS: tuple[Column[CaseEnergy], ...] = (
    Column("max device J", lambda e: format_number(e.max_device_j)),
    Column("mean device J", lambda e: format_number(e.mean_device_j)),
    Column("total J", lambda e: format_number(e.total_j)),
    Column("comm MB", lambda e: _mb(e.comm_bytes)),
    Column("peak MB/device", lambda e: _mb(e.max_peak_bytes)),
    Column("fits", _fits),
    Column("makespan s", lambda e: format_number(e.makespan_s)),
    Column("halo recompute", _halo),
)
"""The figures of each strategy's row in a group's table, after its name and rank."""

DEVICE_COLUMNS: tuple[Column[DeviceResult], ...] = (
    Column("compute J", lambda d: format_number(d.compute_j)),
    Column("comm J", lambda d: format_number(d.comm_j)),
    Column("static J", lambda d: format_number(d.static_j)),
    Column("total J", lambda d: format_number(d.total_j)),
    Column("busy s", lambda d: format_number(d.busy_s)),
    Column("comm s", lambda d: format_number(d.comm_s)),
    Column("sent MB", lambda d: _mb(d.bytes_sent)),
    Column("received MB", lambda d: _mb(d.bytes_received)),
    Column("peak MB", lambda d: _mb(d.peak_bytes)),
    Column("fits", lambda d: "yes" if d.fits else "no"),
)
"""The figures of each device's row in the per-device tables, after its index and profile."""

CSV_FIGURES: tuple[str, ...] = (
    "max_device_j", "mean_device_j", "total_j", "comm_bytes", "max_peak_bytes", "fits",
    "makespan_s", "redundant_macs", "redundant_macs_pct")
"""The :class:`~.results.CaseEnergy` figures of each CSV row, raw (joules, seconds, bytes)."""

ROBUSTNESS_CSV: tuple[str, ...] = (
    "win_share", "robust_margin", "robust_flip_field", "robust_flip_factor", "robust_flip_to")
"""The robustness columns of each CSV row (empty without ``--edge-sensitivity``): this
strategy's share of joint draws won, then the group's margin and nearest single-field flip."""

_SUMMARY_HEADERS = ("strategy", "rank", *(c.header for c in SUMMARY_COLUMNS))
_DEVICE_HEADERS = ("device", "profile", *(c.header for c in DEVICE_COLUMNS))


@dataclasses.dataclass(frozen=True)
class Row:
    """One strategy in one group: its case and its rank (``None`` when it failed)."""

    case: CaseResult
    rank: int | None


@dataclasses.dataclass(frozen=True)
class GroupReport(GroupId):
    """The strategies compared on one model, cluster, input shape and energy model."""

    rows: tuple[Row, ...]
    robustness: Robustness | None = None  # with --edge-sensitivity

    @property
    def scenario(self) -> str:
        """The scenario its cases were estimated under."""
        return self.rows[0].case.scenario if self.rows else DEFAULT_SCENARIO_TEXT

    @property
    def title(self) -> str:
        """E.g. ``tinycnn on 4xrpi4 (input 1x3x32x32, energy model board)``, and the scenario
        when it is not the default."""
        title = super().title
        if self.scenario != DEFAULT_SCENARIO_TEXT:
            title = f"{title[:-1]}, scenario {self.scenario})"
        return title

    @property
    def streams(self) -> bool:
        """Whether its cases are a stream's (they have a period between images)."""
        return any(r.case.energy is not None and r.case.energy.period_s is not None
                   for r in self.rows)

    @property
    def headers(self) -> tuple[str, ...]:
        """The summary table's headers: the fixed ones, then a stream's period and the share
        of joint draws won when the group has them."""
        extra = (("period s",) if self.streams else ()) + (
            ("wins (joint draws)",) if self.robustness is not None else ())
        return (*_SUMMARY_HEADERS, *extra)

    def robustness_line(self) -> str:
        """One line on how sure the ranking is (empty without ``--edge-sensitivity``)."""
        if self.robustness is None:
            return ""
        return (f"robustness ({self.robustness.metric}, {self.robustness.samples} joint draws "
                f"x0.5..x2, seed {self.robustness.seed}): {self.robustness.headline()}")

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
            cells = _summary_cells(row, row.rank == 1)
            energy = row.case.energy
            if self.streams:
                cells.append("-" if energy is None or energy.period_s is None
                             else format_number(energy.period_s))
            if self.robustness is not None:
                share = self.robustness.shares.get(row.case.strategy)
                cells.append("-" if share is None else f"{100 * share:.0f}%")
            out.append(cells)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the group and, per strategy, its rank and figures."""
        best = self.best
        return {
            "model": self.model, "cluster": self.cluster, "input_shape": list(self.input_shape),
            "energy_model": self.energy_model, "scenario": self.scenario,
            "robustness": None if self.robustness is None else self.robustness.to_dict(),
            "best": None if best is None else best.strategy,
            "worst": None if self.worst is None else self.worst.strategy,
            "rows": [{"strategy": r.case.strategy, "rank": r.rank, "key": r.case.key,
                      "status": r.case.status} for r in self.rows],
        }


def _summary_cells(row: Row, best: bool) -> list[str]:
    case, energy = row.case, row.case.energy
    rank = "-" if row.rank is None else f"{row.rank} (best)" if best else str(row.rank)
    if energy is None:  # the status takes the last column
        return [case.strategy, rank, *["-"] * (len(SUMMARY_COLUMNS) - 1), case.status.upper()]
    status = "" if case.ok else f" [{case.status.upper()}]"
    return [case.strategy + status, rank, *(c.cell(energy) for c in SUMMARY_COLUMNS)]


def device_rows(energy: CaseEnergy) -> list[list[str]]:
    """The per-device breakdown of one case, as text."""
    return [[f"{d.index}{' (idle)' if d.idle else ''}", d.profile,
             *(c.cell(d) for c in DEVICE_COLUMNS)] for d in energy.devices]


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


class ExtraSection(Protocol):
    """A section another part of the package adds to the report (measured energy, pictures):
    shown after the tables in the terminal and in Markdown, under ``key`` in the JSON."""

    @property
    def key(self) -> str:
        """The section's key in the JSON report."""
        ...

    def to_text(self) -> str:
        """The section as the terminal shows it (empty: nothing to say)."""
        ...

    def to_markdown(self, folder: Path | None = None) -> str:
        """A Markdown section; ``folder`` is where the Markdown file is (for relative links),
        None for the job summary."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        ...

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """Columns the section adds to each CSV row (none: ``()``)."""
        ...

    def csv_cells(self, key: str) -> list[object]:
        """The section's cells of case ``key``'s CSV row, one per :attr:`csv_columns`."""
        ...


@dataclasses.dataclass(frozen=True)
class Report:
    """Every group of a session, the cases that failed, the baseline comparison, and the
    sections other parts add (:class:`ExtraSection`)."""

    groups: tuple[GroupReport, ...]
    cases: tuple[CaseResult, ...]
    failures: tuple[CaseResult, ...]
    baseline: BaselineSection | None = None
    extras: tuple[ExtraSection, ...] = ()

    def is_empty(self) -> bool:
        """Whether no case was recorded."""
        return not self.cases and not self.failures

    def _sections(self, fmt: str) -> list[tuple[str, str]]:
        """(heading, table) pairs in the order every text format shows them."""
        sections: list[tuple[str, str]] = []
        for group in self.groups:
            table = tabulate(group.summary_rows(), headers=group.headers, tablefmt=fmt,
                             disable_numparse=True)
            if group.robustness_line():
                table += "\n\n" + group.robustness_line()
            sections.append((group.title, table))
            for row in group.ranked:
                if row.case.explanation:
                    lines = row.case.explanation.splitlines()
                    text = "\n".join(f"- {line}" if fmt == "github" else f"  {line}"
                                     for line in lines)
                    sections.append((f"{group.model} on {group.cluster}: how "
                                     f"{row.case.strategy} chose", text))
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
        parts += [t.rstrip("\n") for t in (e.to_text() for e in self.extras) if t]
        return "\n\n".join(parts)

    def to_markdown(self, folder: Path | None = None) -> str:
        """The report as Markdown, for a CI job summary (or a file in ``folder``)."""
        parts = ["# Edge energy report"]
        for heading, table in self._sections("github"):
            level = "###" if ": per device" in heading or ": how " in heading else "##"
            parts.append(f"{level} {heading}\n\n{table}")
        if self.failures:
            parts.append("## Equivalence failures and errors\n\n" + "\n".join(
                f"- `{c.nodeid}`: {c.status}: "
                f"{c.message.splitlines()[0] if c.message else ''}" for c in self.failures))
        if self.baseline is not None and self.baseline.to_markdown():
            parts.append(self.baseline.to_markdown().rstrip("\n"))
        parts += [t.rstrip("\n") for t in (e.to_markdown(folder) for e in self.extras) if t]
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: every case with every number, the groups, the failures."""
        return {
            "format": REPORT_FORMAT,
            "groups": [g.to_dict() for g in self.groups],
            "cases": [c.to_dict() for c in self.cases],
            "failures": [c.to_dict() for c in self.failures],
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            **{e.key: e.to_dict() for e in self.extras},
        }

    def to_json(self) -> str:
        """The JSON report as text, keys sorted so it diffs well."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        """One CSV row per case, with raw numbers (joules, seconds, bytes)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["model", "cluster", "input_shape", "energy_model", "strategy", "rank",
                         "best", "status", *CSV_FIGURES, "key", "scenario", "period_s",
                         *ROBUSTNESS_CSV, *(c for e in self.extras for c in e.csv_columns)])
        for group in self.groups:
            best = group.best
            for row in [*group.ranked, *(r for r in group.rows if r.rank is None)]:
                c, e = row.case, row.case.energy
                figures = ([""] * len(CSV_FIGURES) if e is None
                           else [_raw(getattr(e, name)) for name in CSV_FIGURES])
                period = "" if e is None or e.period_s is None else _raw(e.period_s)
                writer.writerow([c.model, c.cluster, format_shape(c.input_shape),
                                 c.energy_model, c.strategy,
                                 "" if row.rank is None else row.rank, c is best, c.status,
                                 *figures, c.key, c.scenario, period,
                                 *_robustness_cells(group.robustness, c.strategy),
                                 *(cell for x in self.extras for cell in x.csv_cells(c.key))])
        return buffer.getvalue()

    def render(self, path: Path) -> str:
        """The report in the format ``path``'s suffix names."""
        suffix = path.suffix.lower()
        if suffix == ".md":
            return self.to_markdown(path.parent)
        if suffix == ".json":
            return self.to_json()
        if suffix == ".csv":
            return self.to_csv()
        raise ValueError(f"unknown report suffix {suffix!r} of {path}")


def _robustness_cells(r: Robustness | None, strategy: str) -> list[object]:
    if r is None:
        return [""] * len(ROBUSTNESS_CSV)
    flip = r.nearest_flip
    return [_raw(r.shares.get(strategy, "")), "" if r.margin is None else _raw(r.margin),
            "" if flip is None else flip.field, "" if flip is None else _raw(flip.factor),
            "" if flip is None else flip.new_winner]


def group_robustness(cases: Sequence[CaseResult], homogeneous: bool) -> Robustness | None:
    """The robustness of a group's ranking from its passed cases' sensitivity figures
    (``None`` when fewer than two have them, or they were made under other conditions)."""
    figures = [CaseSensitivity.from_dict(c.sensitivity) for c in cases
               if c.ok and c.sensitivity is not None]
    if len(figures) < 2:
        return None
    try:
        return rank_robustness(figures, homogeneous=homogeneous)
    except EdgeEnergyError:
        return None


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
                    _rank(sorted(by_group[key], key=lambda c: c.strategy)),
                    group_robustness(by_group[key], homogeneous="+" not in key[1]))
        for key in sorted(by_group, key=group_order))
    return Report(groups, tuple(all_cases), tuple(failures))


def _raw(value: object) -> object:
    # repr keeps every digit of a float: the CSV holds the figures themselves.
    return repr(value) if isinstance(value, float) else value


def write_reports(report: Report, paths: Iterable[Path]) -> list[Written]:
    """Write the report to each path; say for each file what happened."""
    return [write_file("report", path, report.render(path)) for path in paths]
