"""Pictures of the comparisons (optional extra ``plot``: matplotlib).

:mod:`.records` turns a report's JSON form and saved runs into plain records (no matplotlib);
:mod:`.draw` draws them; :mod:`.output` writes the files for ``--edge-plot`` and
``history --plot``.
"""

from __future__ import annotations

from .draw import EXTRA, FORMATS, PlotUnavailableError, require_matplotlib
from .output import (
    PicturesSection,
    is_single_file,
    markdown_section,
    picture_data,
    write_history_plot,
    write_report_plots,
)
from .records import (
    DeviceBar,
    PlotGroup,
    RobustnessBar,
    StrategyBars,
    Sweep,
    Trend,
    groups_from_report,
    sweeps,
    trends_from_runs,
)

__all__ = [
    "EXTRA",
    "FORMATS",
    "DeviceBar",
    "PicturesSection",
    "PlotGroup",
    "PlotUnavailableError",
    "RobustnessBar",
    "StrategyBars",
    "Sweep",
    "Trend",
    "groups_from_report",
    "is_single_file",
    "markdown_section",
    "picture_data",
    "require_matplotlib",
    "sweeps",
    "trends_from_runs",
    "write_history_plot",
    "write_report_plots",
]
