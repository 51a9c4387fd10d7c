"""Writing the pictures: one file, or a folder of one picture per model and cluster.

``--edge-plot=PATH``: a path ending in ``.svg`` or ``.png`` gets every comparison group (and
every device-count sweep) in one picture; any other path is a folder that gets one SVG per
group (``MODEL__CLUSTER__INPUT__ENERGYMODEL.svg``) and per sweep. Files are written
atomically. :func:`markdown_section` lists them for a Markdown report.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from .draw import (
    FORMATS,
    Panel,
    draw_group,
    draw_robustness,
    draw_sweep,
    draw_trend,
    figure_of,
    render_figure,
)
from .records import PlotGroup, Sweep, Trend, groups_from_report, sweeps

__all__ = [
    "PicturesSection",
    "is_single_file",
    "markdown_section",
    "picture_data",
    "write_history_plot",
    "write_report_plots",
]


def is_single_file(target: Path) -> bool:
    """Whether ``target`` names one picture (``.svg``/``.png``) rather than a folder."""
    return target.suffix.lower() in FORMATS


def _group_panels(group: PlotGroup) -> list[Panel]:
    panels: list[Panel] = [functools.partial(draw_group, group=group)]
    if group.robustness:
        panels.append(functools.partial(draw_robustness, group=group))
    return panels


def _sweep_panels(sweep: Sweep) -> list[Panel]:
    return [functools.partial(draw_sweep, sweep=sweep, metric=m)
            for m in ("max_device_j", "total_j")]


def _write(path: Path, panels: Sequence[Panel], data: Any, columns: int = 1) -> Path:
    """Draw ``panels`` into ``path``, with ``data`` (the records drawn) as JSON in the file's
    metadata, so a picture can be checked against what the code computes today."""
    fig = figure_of(panels, columns)
    description = json.dumps(data, sort_keys=True, default=_plain)
    write_atomic(path, render_figure(fig, path.suffix.lower(), description))
    return path


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot describe {type(value).__name__} in a picture's metadata")


def picture_data(path: Path) -> Any:
    """The records drawn in an SVG written here (its ``dc:description``), or None."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    for element in root.iter("{http://purl.org/dc/elements/1.1/}description"):
        if element.text:
            return json.loads(element.text)
    return None


def write_report_plots(report: Mapping[str, Any], target: Path) -> list[Path]:
    """Draw a report (its JSON form) to ``target``; return the files written (none when the
    report has no passed case)."""
    groups = groups_from_report(report)
    found = sweeps(groups)
    if not groups:
        return []
    if is_single_file(target):
        panels = [p for g in groups for p in _group_panels(g)]
        panels += [p for s in found for p in _sweep_panels(s)]
        return [_write(target, panels, {"groups": groups, "sweeps": found})]
    written = [_write(target / f"{g.slug}.svg", _group_panels(g), {"groups": [g]})
               for g in groups]
    written += [_write(target / f"{s.slug}.svg", _sweep_panels(s), {"sweeps": [s]}, columns=2)
                for s in found]
    return written


def write_history_plot(trends: Sequence[Trend], unit: str, target: Path) -> list[Path]:
    """Draw each case's trend: in one picture (``.svg``/``.png``), or one SVG per case in a
    folder; return the files written."""
    if not trends:
        return []
    if is_single_file(target):
        columns = 1 if len(trends) == 1 else 2
        return [_write(target, [functools.partial(draw_trend, trend=t, unit=unit)
                                for t in trends], {"trends": trends}, columns)]
    return [_write(target / f"{_case_file(t.case)}.svg",
                   [functools.partial(draw_trend, trend=t, unit=unit)], {"trends": [t]})
            for t in trends]


def _case_file(case: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in case)


def markdown_section(paths: Sequence[Path], relative_to: Path | None = None) -> str:
    """A Markdown section embedding the pictures (paths relative to ``relative_to``, the
    folder of the Markdown file, when given; POSIX separators)."""
    if not paths:
        return ""
    lines = ["## Pictures", ""]
    for path in paths:
        shown = Path(os.path.relpath(path, relative_to)) if relative_to is not None else path
        link = shown.as_posix()
        lines.append(f"![{path.stem}]({link})")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


@dataclasses.dataclass(frozen=True)
class PicturesSection:
    """The pictures of a run as a report section (``records.report.ExtraSection``): embedded
    in a Markdown file (relative to its folder), listed by path in the job summary (which
    cannot show a file from the runner's disk), ``pictures`` in the JSON report."""

    paths: tuple[Path, ...]
    key: str = "pictures"

    def to_text(self) -> str:
        """Nothing: the terminal says where each picture was written."""
        return ""

    def to_markdown(self, folder: Path | None = None) -> str:
        """Embedded pictures, or (``folder`` None) their paths."""
        if folder is not None or not self.paths:
            return markdown_section(self.paths, folder)
        return "## Pictures\n\n" + "\n".join(f"- `{p}`" for p in self.paths) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the files."""
        return {"files": [str(p) for p in self.paths]}

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """None: pictures are not per case."""
        return ()

    def csv_cells(self, key: str) -> list[object]:
        """None."""
        return []
