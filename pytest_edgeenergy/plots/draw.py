"""Drawing with matplotlib (the optional extra ``plot``): figures from :mod:`.records`.

matplotlib is imported only here, when a picture is asked for; without it
:func:`require_matplotlib` raises :class:`PlotUnavailableError` naming the extra to install.
Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global
backend or state), text stays text in SVG, and an SVG carries no date or version: the same
figures give the same file.

Every bar, line and panel gets an SVG id (``gid``) that says what it shows, so tests and
users can find them: ``bar__STRATEGY__TERM__DEVICE``, ``robustness__LABEL``,
``sweep__METRIC__STRATEGY``, ``trend__CASE``.
"""

from __future__ import annotations

import importlib
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EdgeEnergyError
from .records import TERMS, PlotGroup, Sweep, Trend

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EXTRA",
    "FORMATS",
    "PlotUnavailableError",
    "draw_group",
    "draw_robustness",
    "draw_sweep",
    "draw_trend",
    "figure_of",
    "render_figure",
    "require_matplotlib",
]

EXTRA = "pip install 'pytest-edgeenergy[plot]'"
"""How to install what the pictures need."""

FORMATS: tuple[str, ...] = (".svg", ".png")
"""The picture formats, by file suffix."""

COLOURS: dict[str, str] = {"compute_j": "#4C72B0", "comm_j": "#DD8452", "static_j": "#9A9A9A"}
_PANEL_WIDTH_IN = 9.0
_PANEL_HEIGHT_IN = 3.6


class PlotUnavailableError(EdgeEnergyError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailableError` when matplotlib cannot be imported."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailableError(
            f"pictures need matplotlib, which is not installed: {EXTRA}") from None


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def draw_group(ax: Axes, group: PlotGroup) -> None:
    """Per-device stacked bars (compute, communication, static), one group per strategy."""
    n = group.n_devices
    centres = []
    for i, strategy in enumerate(group.strategies):
        base = i * (n + 1)
        xs = [base + d for d in range(len(strategy.devices))]
        centres.append(base + (len(strategy.devices) - 1) / 2)
        bottoms = [0.0] * len(xs)
        for field, label in TERMS:
            heights = [getattr(d, field) for d in strategy.devices]
            bars = ax.bar(xs, heights, 0.8, bottom=bottoms, color=COLOURS[field],
                          label=label if i == 0 else "_nolegend_")
            for device, patch in zip(strategy.devices, bars.patches, strict=True):
                patch.set_gid(f"bar__{strategy.strategy}__{label}__{device.index}")
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        for x, device, top in zip(xs, strategy.devices, bottoms, strict=True):
            ax.annotate(str(device.index), (x, top), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 1), textcoords="offset points", color="#555555")
    ax.set_xticks(centres, [f"{s.strategy}\n(rank {s.rank})" for s in group.strategies])
    ax.set_ylabel("energy per device (J)")
    ax.set_title(_wrap(group.title), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title="device number\nabove each bar", title_fontsize=7)
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)


def draw_robustness(ax: Axes, group: PlotGroup) -> None:
    """Per profile field, the factor that changes the best strategy (log scale, from x1);
    fields no factor in range flips are labelled so."""
    bars = group.robustness
    ys = list(range(len(bars)))
    for y, bar in zip(ys, bars, strict=True):
        if bar.factor is None:
            ax.annotate("no flip in range", (1.0, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7, color="#555555")
            continue
        left, right = sorted((1.0, bar.factor))
        (patch,) = ax.barh([y], [right - left], left=left, color="#55A868",
                           height=0.6).patches
        patch.set_gid(f"robustness__{bar.label}")
        ax.annotate(f"x{bar.factor:.3g} -> {bar.new_winner}", (bar.factor, y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(1 / 24, 24)  # the sensitivity search covers x1/16..x16
    ax.axvline(1.0, color="#333333", linewidth=0.8)
    ax.set_yticks(ys, [b.label for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("factor on the profile field that changes the best strategy")
    title = f"robustness of the ranking: {group.model} on {group.cluster}"
    if group.robustness_headline:
        title += f": {group.robustness_headline}"
    ax.set_title(_wrap(title, 90), fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def draw_sweep(ax: Axes, sweep: Sweep, metric: str) -> None:
    """``metric`` (``max_device_j`` or ``total_j``) against the device count, per strategy."""
    names = sorted({s.strategy for g in sweep.groups for s in g.strategies})
    for name in names:
        points = [(g.n_devices, getattr(s, metric)) for g in sweep.groups
                  for s in g.strategies if s.strategy == name]
        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                          label=name)
        line.set_gid(f"sweep__{metric}__{name}")
    counts = sorted({g.n_devices for g in sweep.groups})
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("devices")
    what = "largest per-device energy" if metric == "max_device_j" else "energy of all devices"
    ax.set_ylabel(f"{what} (J)")
    ax.set_title(_wrap(f"{what} against device count: {sweep.title}", 60), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def draw_trend(ax: Axes, trend: Trend, unit: str) -> None:
    """One case's metric over saved runs, the commits on the axis."""
    xs = list(range(len(trend.points)))
    (line,) = ax.plot(xs, [p[2] for p in trend.points], marker="o", color="#4C72B0")
    line.set_gid(f"trend__{trend.case}")
    ax.set_xticks(xs, [f"{commit}\n{run}" for run, commit, _ in trend.points], fontsize=7)
    ax.set_xlabel("commit / saved run")
    ax.set_ylabel(f"{trend.metric} ({unit})")
    ax.set_title(_wrap(trend.case, 60), fontsize=9)
    ax.grid(alpha=0.3)


Panel = Callable[["Axes"], None]


def figure_of(panels: Sequence[Panel], columns: int = 1,
              height_in: float = _PANEL_HEIGHT_IN) -> Figure:
    """A figure of ``panels`` on a grid of ``columns``, each drawn by its function."""
    require_matplotlib()
    from matplotlib.figure import Figure

    rows = max(1, math.ceil(len(panels) / columns))
    width = _PANEL_WIDTH_IN if columns == 1 else 5.5 * columns
    fig = Figure(figsize=(width, height_in * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        panel(ax)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def render_figure(fig: Figure, suffix: str, description: str | None = None) -> str | bytes:
    """The figure as SVG text or PNG bytes (``suffix`` ``.svg`` or ``.png``); ``description``
    goes in the file's metadata (SVG ``dc:description``, PNG ``Description``)."""
    import matplotlib

    extra = {} if description is None else {"Description": description}
    buffer: Any
    if suffix == ".svg":
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgeenergy"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight",
                        metadata={"Date": None, "Creator": None, **extra})
        return str(buffer.getvalue())
    if suffix == ".png":
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight",
                    metadata={"Software": None, **extra})
        return bytes(buffer.getvalue())
    raise ValueError(f"unknown picture suffix {suffix!r}; expected one of {', '.join(FORMATS)}")
