"""``python -m pytest_edgeenergy history``: per-case trends across saved runs.

::

    python -m pytest_edgeenergy history                         # every case, max_device_j
    python -m pytest_edgeenergy history --case tinycnn --metric total_j --last 10

For each case (``--case`` keeps the keys that contain a substring), one table of the saved
runs (``--edge-autosave``) in order: run number, time, commit, branch, whether the checkout
had uncommitted changes, the metric's value and its change from the previous run that had
the case. Runs without the case are left out of its table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from tabulate import tabulate

from ..errors import EdgeEnergyError
from .format import MB, format_change, format_number
from .runs import DEFAULT_HISTORY_DIR, SavedRun, list_runs, load_run
from .thresholds import METRICS

__all__ = ["CASE_METRICS", "render", "run"]

CASE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if not m.per_device)
"""The metrics a trend can follow: one number per case."""

_HEADERS = ("run", "time (UTC)", "commit", "branch", "dirty", "value", "change")


def _dirty(run: SavedRun) -> str:
    return "-" if run.git.dirty is None else "yes" if run.git.dirty else "no"


def render(runs: list[SavedRun], case: str | None = None, metric: str = "max_device_j",
           markdown: bool = False) -> str:
    """The trend tables of every case in ``runs`` whose key contains ``case``."""
    unit = METRICS[metric].unit
    keys = sorted({k for r in runs for k in r.entries if case is None or case in k})
    fmt = "github" if markdown else "simple"
    parts = []
    for key in keys:
        rows = []
        previous: float | None = None
        for saved in runs:
            entry = saved.entries.get(key)
            if entry is None:
                continue
            value = float(getattr(entry.energy, metric))
            rows.append([f"{saved.number:04d}" if saved.number is not None else saved.path.name,
                         saved.time_utc or "-", (saved.git.commit or "-")[:12],
                         saved.git.branch or "-", _dirty(saved),
                         format_number(value / (MB if unit == "bytes" else 1.0)),
                         "" if previous is None else format_change(previous, value)])
            previous = value
        title = f"{key}: {metric} ({'MB' if unit == 'bytes' else unit})"
        table = tabulate(rows, headers=_HEADERS, tablefmt=fmt, disable_numparse=True)
        parts.append(f"## `{key}`: {metric}\n\n{table}" if markdown else f"{title}\n{table}")
    return "\n\n".join(parts) + "\n" if parts else ""


def run(history_dir: Path = Path(DEFAULT_HISTORY_DIR), case: str | None = None,
        metric: str = "max_device_j", last: int | None = None, markdown: bool = False,
        stdout: TextIO | None = None, plot: Path | None = None) -> int:
    """Print the trends of the saved runs in ``history_dir``; return the exit status.

    With ``plot``, also draw them there (:func:`pytest_edgeenergy.plots.write_history_plot`).

    Raises :class:`~pytest_edgeenergy.errors.EdgeEnergyError` for an unknown metric, a folder
    without saved runs, or a saved run that cannot be read.
    """
    stdout = stdout or sys.stdout
    if metric not in CASE_METRICS:
        raise EdgeEnergyError(f"--metric {metric!r} is not a case metric; choose one of: "
                              f"{', '.join(CASE_METRICS)}")
    paths = list_runs(history_dir)
    if not paths:
        raise EdgeEnergyError(f"no saved runs in {history_dir}: save runs with "
                              "pytest --edge-autosave (or name the folder with --dir)")
    if last is not None:
        paths = paths[-last:]
    runs = [load_run(p) for p in paths]
    text = render(runs, case, metric, markdown)
    if not text:
        raise EdgeEnergyError(f"no case in the {len(runs)} saved run(s) of {history_dir} "
                              f"matches {case!r}")
    stdout.write(text)
    if plot is not None:
        from ..plots import trends_from_runs, write_history_plot

        unit = METRICS[metric].unit
        for path in write_history_plot(trends_from_runs(runs, metric, case), unit, plot):
            stdout.write(f"picture written to {path}\n")
    return 0
