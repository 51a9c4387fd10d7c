"""``python -m pytest_edgeenergy compare``: two saved runs, or a run against the baseline.

::

    python -m pytest_edgeenergy compare                 # the run before the latest -> latest
    python -m pytest_edgeenergy compare 3 7             # saved run 3 -> saved run 7
    python -m pytest_edgeenergy compare latest --baseline suites/edgeenergy-baseline.json

A run is named by its number, ``latest``, ``previous`` or a file path (a saved run or a
baseline). The output has the report's layout and number formatting: per model, cluster,
input shape and energy model, one row per strategy with its rank and the old and new figures;
the per-device breakdown of every case that moved; then the same verdicts the plugin gives
(``--fail-on`` takes the thresholds of ``--edge-fail-on``). The exit status is 1 when a case
regressed past a threshold, so the command can gate a CI step; 2 for bad input.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tabulate import tabulate

from ..errors import EdgeEnergyError
from .baseline import Entry
from .format import MB, format_change, format_number
from .report import build_report, group_title
from .runs import DEFAULT_HISTORY_DIR, load_figures, resolve_run
from .thresholds import (
    DEFAULT_FAIL_ON,
    Comparison,
    Threshold,
    ThresholdError,
    compare_energy,
    parse_thresholds,
)
from .tracking import what_moved

__all__ = ["CaseDiff", "compare_entries", "render", "run"]


@dataclasses.dataclass(frozen=True)
class CaseDiff:
    """One case in either side: its old and new entries (one may be missing)."""

    key: str
    old: Entry | None
    new: Entry | None
    comparison: Comparison | None

    @property
    def status(self) -> str:
        """``regressed``, ``improved``, ``changed``, ``unchanged``, ``new`` or ``gone``."""
        if self.comparison is not None:
            return self.comparison.status
        return "new" if self.old is None else "gone"


def compare_entries(old: Mapping[str, Entry], new: Mapping[str, Entry],
                    thresholds: Sequence[Threshold]) -> list[CaseDiff]:
    """Every case of either side, compared where both have it, sorted by key."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        comparison = (compare_energy(a.energy, b.energy, thresholds)
                      if a is not None and b is not None else None)
        out.append(CaseDiff(key, a, b, comparison))
    return out


def _entry(diff: CaseDiff) -> Entry:
    entry = diff.new or diff.old
    assert entry is not None
    return entry


def _pair(old: float | None, new: float | None, scale: float = 1.0) -> str:
    if old is None and new is None:
        return "-"
    if old is None:
        return f"- -> {format_number(new / scale)}" if new is not None else "-"
    if new is None:
        return f"{format_number(old / scale)} -> -"
    if old == new:
        return format_number(new / scale)
    return f"{format_number(old / scale)} -> {format_number(new / scale)}"


def _change(old: float | None, new: float | None) -> str:
    return "" if old is None or new is None else format_change(old, new)


def _ranks(entries: Mapping[str, Entry]) -> dict[str, int | None]:
    report = build_report([e.to_case() for e in entries.values()], [])
    return {row.case.key: row.rank for group in report.groups for row in group.rows}


def _verdict(diff: CaseDiff) -> str:
    if diff.comparison is None:
        return "only in new" if diff.old is None else "only in old"
    findings = diff.comparison.regressions or diff.comparison.improvements
    metrics = ", ".join(f.metric.name for f in findings)
    label = {"regressed": "REGRESSED", "improved": "improved"}.get(diff.status, diff.status)
    return f"{label} {metrics}".strip()


_HEADERS = ("strategy", "rank", "max device J", "change", "total J", "change", "makespan s",
            "change", "comm MB", "change", "result")
_DEVICE_HEADERS = ("device", "profile", "total J", "change", "compute J", "comm J", "static J",
                   "peak MB")


def _row(diff: CaseDiff, ranks_old: Mapping[str, int | None],
         ranks_new: Mapping[str, int | None]) -> list[str]:
    entry = _entry(diff)
    a = diff.old.energy if diff.old else None
    b = diff.new.energy if diff.new else None
    rank_old, rank_new = ranks_old.get(diff.key), ranks_new.get(diff.key)
    rank = (str(rank_new) if rank_old == rank_new
            else f"{rank_old or '-'} -> {rank_new or '-'}")
    cells = [entry.strategy, rank]
    for name, scale in (("max_device_j", 1.0), ("total_j", 1.0), ("makespan_s", 1.0),
                        ("comm_bytes", MB)):
        x = None if a is None else float(getattr(a, name))
        y = None if b is None else float(getattr(b, name))
        cells += [_pair(x, y, scale), _change(x, y)]
    return [*cells, _verdict(diff)]


def _device_rows(diff: CaseDiff) -> list[list[str]]:
    assert diff.old is not None and diff.new is not None
    rows = []
    for a, b in zip(diff.old.energy.devices, diff.new.energy.devices, strict=False):
        rows.append([str(b.index), b.profile, _pair(a.total_j, b.total_j),
                     _change(a.total_j, b.total_j), _pair(a.compute_j, b.compute_j),
                     _pair(a.comm_j, b.comm_j), _pair(a.static_j, b.static_j),
                     _pair(a.peak_bytes, b.peak_bytes, MB)])
    return rows


def render(diffs: Sequence[CaseDiff], old_label: str, new_label: str,
           thresholds: Sequence[Threshold], markdown: bool = False) -> str:
    """The comparison as text (the report's "simple" tables) or GitHub Markdown."""
    fmt = "github" if markdown else "simple"
    heading = (lambda level, text: f"{'#' * level} {text}") if markdown else (
        lambda level, text: text)
    old = {d.key: d.old for d in diffs if d.old is not None}
    new = {d.key: d.new for d in diffs if d.new is not None}
    ranks_old, ranks_new = _ranks(old), _ranks(new)
    parts = [heading(1, "Edge energy comparison") if markdown else "edge energy comparison",
             f"old: {old_label}\nnew: {new_label}\n"
             f"thresholds: {', '.join(t.text for t in thresholds) or 'none'}"]
    groups: dict[tuple[str, str, tuple[int, ...], str], list[CaseDiff]] = {}
    for diff in diffs:
        groups.setdefault(_entry(diff).group, []).append(diff)
    def group_order(group: tuple[str, str, tuple[int, ...], str]) -> tuple[object, ...]:
        devices = len(_entry(groups[group][0]).energy.devices)  # as the report orders them
        return (group[0], devices, group[1], group[2], group[3])

    for group in sorted(groups, key=group_order):
        members = sorted(groups[group], key=lambda d: (ranks_new.get(d.key) or 10**9,
                                                       _entry(d).strategy))
        table = tabulate([_row(d, ranks_old, ranks_new) for d in members], headers=_HEADERS,
                         tablefmt=fmt, disable_numparse=True)
        parts.append(f"{heading(2, group_title(*group))}\n\n{table}" if markdown
                     else f"{group_title(*group)}\n{table}")
        for diff in members:
            if diff.status in ("changed", "regressed", "improved"):
                table = tabulate(_device_rows(diff), headers=_DEVICE_HEADERS, tablefmt=fmt,
                                 disable_numparse=True)
                title = f"{diff.key}: per device"
                parts.append(f"{heading(3, title)}\n\n{table}" if markdown else f"{title}\n{table}")
    parts.append(_summary(diffs, markdown))
    return "\n\n".join(parts) + "\n"


def _summary(diffs: Sequence[CaseDiff], markdown: bool) -> str:
    counts: dict[str, int] = {}
    for diff in diffs:
        counts[diff.status] = counts.get(diff.status, 0) + 1
    order = ("regressed", "improved", "changed", "unchanged", "new", "gone")
    names = {"new": "only in new", "gone": "only in old"}
    head = "summary: " + (", ".join(f"{counts[s]} {names.get(s, s)}" for s in order
                                    if counts.get(s)) or "no cases")
    lines = [head]
    for diff in diffs:
        if diff.status in ("unchanged",):
            continue
        detail = ""
        if diff.comparison is not None and diff.old is not None and diff.new is not None:
            findings = diff.comparison.regressions or diff.comparison.improvements
            detail = "; ".join(f.headline() for f in findings)
            moved = what_moved(diff.old, diff.new)
            detail = "; ".join(p for p in (detail, moved) if p)
        label = _verdict(diff).split(" ")[0] if diff.comparison else names[diff.status]
        key = f"`{diff.key}`" if markdown else diff.key
        lines.append(f"{'- ' if markdown else '  '}{label} {key}{': ' + detail if detail else ''}")
    return "\n".join(lines)


def run(runs: Sequence[str], baseline: Path | None = None,
        history_dir: Path = Path(DEFAULT_HISTORY_DIR), fail_on: Sequence[str] | None = None,
        markdown: bool = False, stdout: TextIO | None = None) -> int:
    """Compare and print; return 1 if a case regressed past a threshold, else 0.

    ``runs`` holds zero (previous -> latest), one (with ``baseline``: baseline -> run) or two
    (old -> new) run specs. Raises :class:`~pytest_edgeenergy.errors.EdgeEnergyError` for bad
    input (a missing or unreadable file, a bad threshold).
    """
    stdout = stdout or sys.stdout
    try:
        thresholds = parse_thresholds(list(fail_on) if fail_on else list(DEFAULT_FAIL_ON))
    except ThresholdError as exc:
        raise EdgeEnergyError(f"--fail-on {','.join(fail_on or ())!r} {exc}") from None
    if baseline is not None:
        if len(runs) != 1:
            raise EdgeEnergyError("with --baseline, name exactly one run to compare with it")
        old_label, old = load_figures(baseline)
        new_label, new = load_figures(resolve_run(runs[0], history_dir))
    elif len(runs) == 2:
        old_label, old = load_figures(resolve_run(runs[0], history_dir))
        new_label, new = load_figures(resolve_run(runs[1], history_dir))
    elif not runs:
        old_label, old = load_figures(resolve_run("previous", history_dir))
        new_label, new = load_figures(resolve_run("latest", history_dir))
    else:
        raise EdgeEnergyError("name two runs to compare, or one run and --baseline PATH")
    diffs = compare_entries(old, new, thresholds)
    stdout.write(render(diffs, old_label, new_label, thresholds, markdown))
    return 1 if any(d.status == "regressed" for d in diffs) else 0
