"""Saved runs (``--edge-autosave``): each run's figures with its commit, branch and time.

Like pytest-benchmark's autosave, each run is one JSON file in the history folder (default
``.edgeenergy/``), named so that the names sort in run order::

    .edgeenergy/0003_20250102T030405Z_1a2b3c4d5e6f.json
    .edgeenergy/0004_20250102T031500Z_1a2b3c4d5e6f_dirty.json

The file holds the run's metadata and its cases as baseline entries (:class:`.baseline.Entry`),
so a saved run compares with another run or with a baseline the same way. Git metadata comes
from ``git`` in the project folder; outside a git checkout (or without git) it is ``null``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..folderlock import folder_lock
from .baseline import (
    BASELINE_FORMAT,
    BaselineError,
    Entry,
    check_format,
    dump_json,
    load_baseline,
    parse_json_object,
    plugin_version,
    read_entries,
)

__all__ = [
    "DEFAULT_HISTORY_DIR",
    "RUN_FORMAT",
    "GitInfo",
    "SavedRun",
    "git_info",
    "list_runs",
    "load_figures",
    "load_run",
    "resolve_run",
    "save_run",
]

RUN_FORMAT = "pytest-edgeenergy-run/1"
"""The ``format`` field of a saved run."""

DEFAULT_HISTORY_DIR = ".edgeenergy"
"""Where ``--edge-autosave`` saves runs when no folder is named (relative to the rootdir)."""

_RUN_NAME = re.compile(r"(\d{4,})_.*\.json")
_GIT_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class GitInfo:
    """The commit a run was made on: full id, branch (``None`` when detached) and dirty flag.

    Every field is ``None`` outside a git checkout.
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(folder: Path) -> GitInfo:
    """The git commit, branch and dirty flag of ``folder``, or :class:`GitInfo` of ``None``.

    A detached HEAD (as on CI) takes its branch from ``GITHUB_HEAD_REF`` (a pull request's
    branch) or ``GITHUB_REF_NAME`` when set. Untracked files do not make a checkout dirty,
    so the history folder itself never does.
    """
    commit = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    if not commit:
        return GitInfo()
    branch = (_git(folder, "symbolic-ref", "--short", "-q", "HEAD")
              or os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME")
              or None)
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit, branch, None if status is None else bool(status))


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """One saved run: where it is, its number and metadata, and its entries by case key."""

    path: Path
    number: int | None
    time_utc: str | None
    git: GitInfo
    entries: dict[str, Entry]
    failed: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A short description: ``run 0003 (2025-01-02T03:04:05Z, 1a2b3c4d5e6f on main)``."""
        parts = [p for p in (self.time_utc, self._commit_text()) if p]
        name = f"run {self.number:04d}" if self.number is not None else str(self.path)
        return f"{name} ({', '.join(parts)})" if parts else name

    def _commit_text(self) -> str:
        if self.git.commit is None:
            return "no git"
        text = self.git.commit[:12]
        if self.git.branch:
            text += f" on {self.git.branch}"
        if self.git.dirty:
            text += ", uncommitted changes"
        return text


def _run_number(path: Path) -> int | None:
    match = _RUN_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else None


def list_runs(folder: Path) -> list[Path]:
    """The saved runs in ``folder``, oldest first (by run number)."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_file() and _run_number(p) is not None]
    return sorted(runs, key=lambda p: (_run_number(p) or 0, p.name))


def _file_name(number: int, when: datetime.datetime, git: GitInfo) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    commit = git.commit[:12] if git.commit else "nogit"
    return f"{number:04d}_{stamp}_{commit}{'_dirty' if git.dirty else ''}.json"


def save_run(folder: Path, entries: Mapping[str, Entry], failed: Sequence[str], git: GitInfo,
             when: datetime.datetime | None = None) -> Path:
    """Save one run as the next numbered file in ``folder``; return its path.

    The file appears whole (:func:`~pytest_edgeenergy.atomic.write_atomic`). Choosing the
    number and writing the file happen under the folder's lock
    (:func:`~pytest_edgeenergy.folderlock.folder_lock`), so two concurrent runs never take
    one number, whatever their file names.
    """
    when = (when or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    with folder_lock(folder):
        number = max((_run_number(p) or 0 for p in list_runs(folder)), default=0) + 1
        target = folder / _file_name(number, when, git)
        write_atomic(target, _run_json(number, when, git, entries, failed), exclusive=True)
    return target


def _run_json(number: int, when: datetime.datetime, git: GitInfo,
              entries: Mapping[str, Entry], failed: Sequence[str]) -> str:
    return dump_json({
        "format": RUN_FORMAT,
        "run": {"number": number, "time_utc": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit": git.commit, "branch": git.branch, "dirty": git.dirty,
                "plugin_version": plugin_version()},
        "cases": {k: e.to_dict() for k, e in sorted(entries.items())},
        "failed": sorted(failed),
    })


def load_run(path: Path) -> SavedRun:
    """Read one saved run; :class:`.baseline.BaselineError` names the file and the fault."""
    data = parse_json_object(path, "saved run")
    check_format(data, path, "saved run", RUN_FORMAT)
    meta = data.get("run")
    if not isinstance(meta, dict):
        raise BaselineError(f"saved run {path}: field 'run' must be an object")
    number = meta.get("number")
    git = GitInfo(_optional(meta, "commit", str, path), _optional(meta, "branch", str, path),
                  _optional(meta, "dirty", bool, path))
    failed = data.get("failed", [])
    if not isinstance(failed, list) or not all(isinstance(f, str) for f in failed):
        raise BaselineError(f"saved run {path}: field 'failed' must be a list of case keys")
    return SavedRun(path, number if isinstance(number, int) else _run_number(path),
                    _optional(meta, "time_utc", str, path), git,
                    read_entries(data, path, "saved run"), tuple(failed))


def _optional(meta: Mapping[str, Any], name: str, kind: type, path: Path) -> Any:
    value = meta.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(
            value, bool))):
        raise BaselineError(f"saved run {path}: field 'run.{name}' must be a {kind.__name__} or "
                            f"null, got {value!r}")
    return value


def resolve_run(spec: str, folder: Path) -> Path:
    """The file a run spec names: a path, a run number (``3``, ``0003``), ``latest`` or
    ``previous`` (the run before the latest) in ``folder``."""
    runs = list_runs(folder)
    lowered = spec.strip().lower()
    if lowered in ("latest", "previous"):
        need = 1 if lowered == "latest" else 2
        if len(runs) < need:
            raise BaselineError(f"'{spec}': {folder} holds {len(runs)} saved run(s); "
                                "save runs with pytest --edge-autosave")
        return runs[-need]
    if spec.strip().isdigit():
        number = int(spec)
        found = [path for path in runs if _run_number(path) == number]
        if len(found) > 1:  # saved by versions that did not lock the folder
            raise BaselineError(f"{len(found)} saved runs in {folder} have number {number}: "
                                f"{', '.join(p.name for p in found)}; name one by its path")
        if found:
            return found[0]
        known = ", ".join(f"{_run_number(p):04d}" for p in runs) or "none"
        raise BaselineError(f"no saved run number {number} in {folder} (saved runs: {known})")
    path = Path(spec)
    if not path.exists():
        raise BaselineError(f"no saved run or baseline file '{spec}' (and no run of that number "
                            f"in {folder})")
    return path


def load_figures(path: Path) -> tuple[str, dict[str, Entry]]:
    """A saved run's or a baseline's entries, and a label saying which it is."""
    data = parse_json_object(path, "saved run" if _run_number(path) is not None else "file")
    if data.get("format") == BASELINE_FORMAT:
        baseline = load_baseline(path)
        assert baseline is not None
        return f"baseline {path}", baseline.entries
    run = load_run(path)
    return f"{run.label} {path}", run.entries
