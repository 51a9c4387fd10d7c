"""Regression tracking in a session: each case against the baseline, new and unused entries,
and the update of the baseline.

The baseline is compared in two places, with the same pure functions:

* in the test, by ``edge_run()`` (:func:`check_case`): a case whose figures grew past a
  threshold fails *that test*, with the old and new figures per device and what moved since
  the baseline (a profile, the plan, the energy model);
* at the end of the session, on the controller (:func:`session_outcome`): the summary of
  every case, the new cases, the unused entries, and with ``--edge-update-baseline`` the
  rewrite of the file.

Which entries count as unused is :mod:`.selection`'s job; writing the file is
:func:`.baseline.save_baseline`'s. Nothing here imports pytest or torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .baseline import Baseline, BaselineError, Entry, function_id, load_baseline, save_baseline
from .format import format_change, format_value
from .results import CaseResult
from .selection import Selection, unused_keys
from .thresholds import Comparison, Threshold, compare_energy

__all__ = [
    "OTHER_SCENARIO",
    "BaselineOutcome",
    "CaseOutcome",
    "check_case",
    "display_path",
    "session_outcome",
    "what_moved",
]

UPDATE_HINT = "pytest --edge-update-baseline"

OTHER_SCENARIO = "other-scenario"
"""The status of a case whose baseline entry was estimated under another scenario."""


def other_scenario_detail(old: Entry, new: Entry | CaseResult) -> str:
    """Why a case was not compared: the two scenarios, and what to do about it."""
    return (f"recorded under scenario {old.scenario}, this run uses {new.scenario}: not "
            f"compared (figures under different conditions are no regression); compare with "
            f"a baseline of this scenario (--edge-baseline=FILE) or record it with "
            f"{UPDATE_HINT}")


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it (shorter messages)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _short(sha: str) -> str:
    return sha[:12]


def what_moved(old: Entry, new: Entry, profile_paths: Mapping[str, str] | None = None) -> str:
    """Say what differs between two entries' inputs: energy model, profiles, model, plan.

    So a user sees whether the device data, the model or the strategy moved. ``profile_paths``
    (profile name to file) adds where a changed profile now comes from.
    """
    parts: list[str] = []
    if old.scenario != new.scenario:
        parts.append(f"the scenario changed ({old.scenario} -> {new.scenario})")
    if old.energy.energy_model_version != new.energy.energy_model_version:
        parts.append(f"energy model {new.energy_model} changed version "
                     f"({old.energy.energy_model_version} -> {new.energy.energy_model_version})")
    old_profiles, new_profiles = old.profiles, new.profiles
    for name, sha in new_profiles.items():
        before = old_profiles.get(name)
        if before is not None and before != sha:
            devices = [str(d.index) for d in new.energy.devices if d.profile == name]
            path = (profile_paths or {}).get(name)
            where = f"; now {path}" if path else ""
            parts.append(f"device profile {name} changed (devices {', '.join(devices)}: sha256 "
                         f"{_short(before)} -> {_short(sha)}{where})")
    plan = _plan_changes(old, new)
    if old.energy.graph_macs != new.energy.graph_macs:
        parts.append(f"the model changed (MACs of the unpartitioned model "
                     f"{old.energy.graph_macs} -> {new.energy.graph_macs})")
    elif plan:
        parts.append("the plan changed (strategy or partitioning): " + ", ".join(plan[:3])
                     + (f" and {len(plan) - 3} more" if len(plan) > 3 else ""))
    elif parts:
        parts.append("the plan is unchanged (same MACs, bytes and memory on every device)")
    if not parts and not old.same_figures(new):
        parts.append("profiles, plan and energy model version are the same, so the energy "
                     f"computation itself changed (recorded with pytest-edgeenergy "
                     f"{old.plugin_version}, now {new.plugin_version})")
    return "; ".join(parts)


def _plan_changes(old: Entry, new: Entry) -> list[str]:
    out = []
    for name in ("comm_bytes", "redundant_macs"):
        a, b = getattr(old.energy, name), getattr(new.energy, name)
        if a != b:
            out.append(f"{name.replace('_', ' ')} {a} -> {b}")
    for before, after in zip(old.energy.devices, new.energy.devices, strict=False):
        for name in ("macs", "bytes_sent", "bytes_received", "peak_bytes"):
            a, b = getattr(before, name), getattr(after, name)
            if a != b:
                out.append(f"device {after.index} {name.replace('_', ' ')} {a} -> {b}")
    return out


def _finding_lines(comparison: Comparison, regressions: bool) -> list[str]:
    findings = comparison.regressions if regressions else comparison.improvements
    return [line for f in findings for line in f.lines()]


def check_case(case: CaseResult, profile_paths: Mapping[str, str], baseline: Baseline | None,
               thresholds: Sequence[Threshold], strict: bool,
               root: Path) -> tuple[str, str | None]:
    """Compare one case with the baseline: (status, failure message or ``None``).

    ``profile_paths`` maps each profile name of the case's cluster to its file, so a message
    says where a changed profile now comes from.

    ``status`` is ``regressed``, ``improved``, ``changed``, ``unchanged``, ``new``,
    ``other-scenario`` (the baseline's figures were estimated under another scenario: not
    compared, never a regression) or ``-`` (no baseline, or a case without figures). A
    regression fails; with ``strict`` so do an improvement and a new case, until the baseline
    is updated.
    """
    if baseline is None or not case.ok or case.energy is None:
        return "-", None
    where = display_path(baseline.path, root)
    old = baseline.get(case.key)
    if old is None:
        if strict:
            return "new", (f"{case.key}: not in the baseline {where} (--edge-strict: record "
                           f"it with {UPDATE_HINT})")
        return "new", None
    if old.scenario != case.scenario:
        return OTHER_SCENARIO, None
    comparison = compare_energy(old.energy, case.energy, thresholds)
    status = comparison.status
    if status == "regressed":
        head = f"{case.key}: regressed against the baseline {where}"
        lines = _finding_lines(comparison, regressions=True)
    elif status == "improved" and strict:
        head = (f"{case.key}: improved past the thresholds against the baseline {where} "
                f"(--edge-strict: acknowledge it)")
        lines = _finding_lines(comparison, regressions=False)
    else:
        return status, None
    new = Entry.from_case(case)
    moved = what_moved(old, new, profile_paths)
    body = [head, *(f"  {line}" for line in lines)]
    if moved:
        body.append(f"  since the baseline: {moved}")
    body.append(f"  if the change is intended, accept it: {UPDATE_HINT}")
    return status, "\n".join(body)


@dataclasses.dataclass(frozen=True)
class CaseOutcome:
    """One case of the run against the baseline (or what the update did with it)."""

    key: str
    status: str  # regressed, improved, changed, unchanged, new, unused, failed; update: added,
    # updated, removed, kept
    detail: str = ""
    comparison: Comparison | None = None


@dataclasses.dataclass
class BaselineOutcome:
    """What the session's comparison with (or update of) the baseline found and did."""

    path: Path
    shown_path: str
    exists: bool
    update: bool
    strict: bool
    thresholds: tuple[Threshold, ...]
    cases: list[CaseOutcome] = dataclasses.field(default_factory=list)
    written: bool = False
    error: str | None = None
    ran: bool = False  # whether any case ran

    def count(self, status: str) -> int:
        """How many cases have ``status``."""
        return sum(c.status == status for c in self.cases)

    @property
    def failed_run(self) -> bool:
        """Whether the comparison alone fails the run (set in ``pytest_sessionfinish``)."""
        if self.error is not None:
            return True
        if self.update:
            return False
        if not self.exists:
            return self.strict and self.ran
        bad = {"regressed"} | ({"improved", "new", "unused"} if self.strict else set())
        return any(c.status in bad for c in self.cases)

    def is_empty(self) -> bool:
        """Whether there is nothing to say (no case ran, nothing unused, no error)."""
        return not self.ran and not self.cases and self.error is None

    def summary(self) -> str:
        """The one-line summary of the comparison or the update."""
        where = self.shown_path
        if self.update:
            if self.error is not None:
                return f"edge baseline {where} was NOT updated"
            counts = _counts(self, ("added", "updated", "removed", "kept", "unchanged"))
            if not self.written:
                return f"edge baseline {where} is up to date ({counts or 'no case ran'})"
            return f"edge baseline {where} {'updated' if self.exists else 'created'}: {counts}"
        if not self.exists:
            strict = " (--edge-strict: a baseline is required)" if self.strict else ""
            return (f"edge baseline {where} does not exist: nothing compared; record one with "
                    f"{UPDATE_HINT}{strict}")
        compared = sum(c.status in ("regressed", "improved", "changed", "unchanged")
                       for c in self.cases)
        counts = _counts(self, ("regressed", "improved", "changed", "unchanged", "new", "unused",
                                "failed", OTHER_SCENARIO))
        thresholds = ", ".join(t.text for t in self.thresholds) or "none"
        return (f"edge baseline {where}: {compared} case(s) compared ({counts}); "
                f"thresholds {thresholds}{'; strict' if self.strict else ''}")

    def lines(self) -> list[tuple[str, bool]]:
        """(line, is bad) for the terminal: the summary, then one line per notable case."""
        out = [(self.summary(), self.failed_run)]
        quiet = {"unchanged"}
        for case in self.cases:
            if case.status in quiet:
                continue
            label = _LABELS.get(case.status, case.status)
            bad = case.status == "regressed" or (
                self.strict and not self.update and case.status in ("improved", "new", "unused"))
            out.append((f"  {label:<10} {case.key}{': ' + case.detail if case.detail else ''}",
                        bad))
        if self.error is not None:
            out.append((self.error, True))
        return out

    def to_markdown(self) -> str:
        """A Markdown section for the report and the CI job summary."""
        if self.is_empty():
            return ""
        lines = ["## Baseline comparison", "", self.summary().replace("|", "\\|"), ""]
        notable = [c for c in self.cases if c.status != "unchanged"]
        if notable:
            lines += ["| status | case | detail |", "|---|---|---|"]
            for case in notable:
                # GitHub splits table cells at every unescaped "|", code spans included.
                detail = case.detail.replace("|", "\\|").replace("\n", " ")
                key = case.key.replace("|", "\\|")
                lines.append(f"| {_LABELS.get(case.status, case.status)} | `{key}` | {detail} |")
            lines.append("")
        if self.error is not None:
            lines += [f"**{self.error}**", ""]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for the JSON report."""
        return {"path": self.shown_path, "exists": self.exists, "update": self.update,
                "strict": self.strict, "thresholds": [t.text for t in self.thresholds],
                "written": self.written, "error": self.error,
                "cases": [{"key": c.key, "status": c.status, "detail": c.detail}
                          for c in self.cases]}


_LABELS = {"regressed": "REGRESSED", "improved": "improved", "changed": "changed",
           OTHER_SCENARIO: "scenario",
           "new": "new", "unused": "unused", "failed": "failed", "added": "added",
           "updated": "updated", "removed": "removed", "kept": "kept"}


def _counts(outcome: BaselineOutcome, statuses: Sequence[str]) -> str:
    return ", ".join(f"{outcome.count(s)} {s}" for s in statuses if outcome.count(s))


def _figures_text(old: Entry, new: Entry) -> str:
    parts = []
    for name, unit in (("max_device_j", "J"), ("total_j", "J"), ("makespan_s", "s"),
                       ("comm_bytes", "bytes"), ("max_peak_bytes", "bytes")):
        a, b = getattr(old.energy, name), getattr(new.energy, name)
        if a != b:
            parts.append(f"{name} {format_value(a, unit)} -> {format_value(b, unit)} "
                         f"({format_change(a, b)})")
    return ", ".join(parts)


def _compare_detail(comparison: Comparison, old: Entry, new: Entry, strict: bool) -> str:
    findings = comparison.regressions or comparison.improvements
    text = "; ".join(f.headline() for f in findings) or _figures_text(old, new)
    moved = what_moved(old, new)
    if moved:
        text += f"; {moved}"
    if comparison.status == "improved":
        text += (f" (--edge-strict: fails until acknowledged with {UPDATE_HINT})" if strict
                 else f" (acknowledge with {UPDATE_HINT})")
    return text


def session_outcome(*, path: Path, root: Path, baseline: Baseline | None,
                    records: Sequence[CaseResult], cases: Sequence[CaseResult],
                    selection: Selection, thresholds: Sequence[Threshold], strict: bool,
                    update: bool, strategies: Sequence[str] | None) -> BaselineOutcome:
    """Compare the session's cases with the baseline, or update it (on the controller).

    ``records`` are every record of the session (several tests may run one case), ``cases``
    one record per case key. With ``update``, the file is re-read just before writing (so an
    entry another process wrote meanwhile is kept), the entries of the cases that passed are
    replaced, unused entries removed, every other entry kept, and the file written
    atomically, only when its text changes.
    """
    outcome = BaselineOutcome(path=path, shown_path=display_path(path, root),
                              exists=baseline is not None, update=update, strict=strict,
                              thresholds=tuple(thresholds), ran=bool(records))
    if update:
        try:
            baseline = load_baseline(path)  # again: the file as it is now
        except BaselineError as exc:
            outcome.error = f"{exc}; the baseline was not updated"
            return outcome
        outcome.exists = baseline is not None
    if baseline is None and not update:
        return outcome  # nothing to compare with: the summary says so
    current = baseline.entries if baseline is not None else {}
    produced = {c.key for c in cases}
    producers: dict[str, set[str]] = {}
    for record in records:
        producers.setdefault(record.key, set()).add(function_id(record.nodeid))
    unused = (unused_keys(baseline, produced, records, selection, None if strategies is None
                          else list(strategies)) if baseline is not None else [])
    if update:
        _update(outcome, current, cases, producers, unused, selection)
        return outcome
    for case in cases:
        old = current.get(case.key)
        if not case.ok or case.energy is None:
            outcome.cases.append(CaseOutcome(case.key, "failed", f"{case.status}: not compared"))
        elif old is None:
            outcome.cases.append(CaseOutcome(case.key, "new", "not in the baseline (record it "
                                             f"with {UPDATE_HINT})"))
        elif old.scenario != case.scenario:
            outcome.cases.append(CaseOutcome(case.key, OTHER_SCENARIO,
                                             other_scenario_detail(old, case)))
        else:
            comparison = compare_energy(old.energy, case.energy, thresholds)
            new = Entry.from_case(case)
            detail = ("" if comparison.status == "unchanged"
                      else _compare_detail(comparison, old, new, strict))
            outcome.cases.append(CaseOutcome(case.key, comparison.status, detail, comparison))
    for key in unused:
        outcome.cases.append(CaseOutcome(key, "unused", "no test produced it although this "
                                         f"run could have ({UPDATE_HINT} removes it)"))
    return outcome


def _update(outcome: BaselineOutcome, current: Mapping[str, Entry],
            cases: Sequence[CaseResult], producers: Mapping[str, set[str]],
            unused: Sequence[str], selection: Selection) -> None:
    collected = selection.functions()
    entries = {k: e for k, e in current.items() if k not in unused}
    # An entry keeps the tests this run did not collect (it says nothing about them) and
    # forgets those that are gone from their files.
    for case in cases:
        old = current.get(case.key)
        if not case.ok or case.energy is None:
            if old is not None:
                outcome.cases.append(CaseOutcome(case.key, "kept", f"the case {case.status}; "
                                                 "its entry was left as it was"))
            continue
        kept_tests = {t for t in (old.tests if old else ())
                      if t not in collected and not selection.gone(t)}
        new = Entry.from_case(case, producers.get(case.key, set()) | kept_tests)
        entries[case.key] = new
        if old is None:
            outcome.cases.append(CaseOutcome(case.key, "added"))
        elif old.same_figures(new):
            outcome.cases.append(CaseOutcome(case.key, "unchanged"))
        else:
            detail = "; ".join(p for p in (_figures_text(old, new), what_moved(old, new)) if p)
            outcome.cases.append(CaseOutcome(case.key, "updated", detail))
    for key in unused:
        outcome.cases.append(CaseOutcome(key, "removed", "no test produced it although this run "
                                         "could have"))
    if not entries and not current:
        return  # nothing ran and there is no file: do not create an empty baseline
    try:
        outcome.written = save_baseline(outcome.path, entries)
    except OSError as exc:
        outcome.error = (f"could not write the edge baseline {outcome.shown_path}: "
                         f"{exc.strerror or exc}; the previous file is unchanged")
