"""How every table and message writes a figure: four significant figures, one formatter."""

from __future__ import annotations

import math

__all__ = ["MB", "format_change", "format_number", "format_value", "relative_change"]

MB = 1e6
"""Bytes in the megabyte the tables show."""


def format_number(value: float) -> str:
    """Four significant figures, never in exponent form for ordinary magnitudes."""
    if value == 0:
        return "0"
    return f"{value:.4g}" if 1e-4 <= abs(value) < 1e6 else f"{value:.3e}"


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
