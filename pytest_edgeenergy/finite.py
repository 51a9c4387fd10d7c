"""Finding a NaN or an infinity in a record before it is written (no torch, no pytest)."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["first_non_finite"]


def first_non_finite(data: object, path: str = "") -> str | None:
    """Where the first NaN or infinity is in nested mappings and sequences (``a.b[2].c = inf``),
    or None when every number is finite. A record holding one cannot be written as JSON."""
    if isinstance(data, float | int) and not isinstance(data, bool):
        return None if math.isfinite(data) else f"{path or 'value'} = {data!r}"
    if isinstance(data, Mapping):
        for key, value in data.items():
            found = first_non_finite(value, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found = first_non_finite(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None
