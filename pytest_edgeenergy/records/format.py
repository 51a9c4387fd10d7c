"""How every table and message writes a figure (four significant figures, one formatter), an
input shape and a comparison group's title."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

__all__ = ["MB", "GroupId", "format_change", "format_number", "format_shape", "format_value",
           "group_title", "relative_change"]

MB = 1e6
"""Bytes in the megabyte the tables show."""


def format_number(value: float) -> str:
    """Four significant figures, never in exponent form for ordinary magnitudes."""
    if value == 0:
        return "0"
    return f"{value:.4g}" if 1e-4 <= abs(value) < 1e6 else f"{value:.3e}"


def format_shape(shape: Sequence[int]) -> str:
    """An input shape as cases, titles and file names write it: ``1x3x32x32``."""
    return "x".join(str(s) for s in shape)


def group_title(model: str, cluster: str, input_shape: Sequence[int], energy_model: str) -> str:
    """A comparison group's heading: ``tinycnn on 4xrpi4 (input 1x3x32x32, energy model
    board)``."""
    return (f"{model} on {cluster} (input {format_shape(input_shape)}, energy model "
            f"{energy_model})")


@dataclasses.dataclass(frozen=True)
class GroupId:
    """What the strategies of a comparison group share: model, cluster, input shape and energy
    model (a report's group and a picture's group extend it)."""

    model: str
    cluster: str
    input_shape: tuple[int, ...]
    energy_model: str

    @property
    def title(self) -> str:
        """E.g. ``tinycnn on 4xrpi4 (input 1x3x32x32, energy model board)``."""
        return group_title(self.model, self.cluster, self.input_shape, self.energy_model)


def format_value(value: float, unit: str) -> str:
    """A figure with its unit: integers in full, other numbers as :func:`format_number`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value} {unit}"
    return f"{format_number(value)} {unit}"


def relative_change(old: float, new: float) -> float:
    """``new / old - 1``; from zero, any growth is infinite and no change is 0."""
    if old == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - old) / abs(old)


def format_change(old: float, new: float) -> str:
    """``+2.38%`` (relative change), ``+inf%`` from zero, ``0%`` for none."""
    change = relative_change(old, new)
    if change == 0:
        return "0%"
    if math.isinf(change):
        return "+inf%" if change > 0 else "-inf%"
    return f"{change * 100:+.3g}%"
