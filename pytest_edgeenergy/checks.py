"""Checks of values a user hands in: shapes, tolerances, seeds and input tensors.

Each check returns the value in its canonical form or raises one :class:`PartitionError`
that names the thing (``what``), the value given and what was expected, so that a bad value
never reaches torch (and its messages about the internals) nor gets silently truncated.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor

from .errors import PartitionError

__all__ = ["as_int_in", "as_positive_seconds", "as_seed", "as_shape", "as_tolerance",
           "check_tensor_input"]

_MAX_SEED = 2**63 - 1


def _kind(value: object) -> str:
    return type(value).__name__


def _as_int(value: object) -> int | None:
    """``value`` as an int when it is an integer (int, NumPy or 0-d integer tensor), else None."""
    if isinstance(value, bool | float):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def as_shape(value: object, what: str = "input shape", rank: int | None = 4) -> tuple[int, ...]:
    """``value`` as a tuple of positive ints, ``rank`` of them (any number when None).

    Refused: a string (``"1,3,8,8"``), anything not a sequence, floats (``8.5``, and ``8.0``
    too: sizes are counted, not measured), booleans, and sizes below 1.
    """
    expected = ("(N, C, H, W), 4 positive integers such as (1, 3, 32, 32)" if rank == 4
                else f"a sequence of {rank or 'some'} positive integers")

    def refuse(shown: object, reason: str) -> PartitionError:
        return PartitionError(f"{what} {shown!r} is not {expected}: {reason}")

    if isinstance(value, str | bytes):
        raise refuse(value, "it is a string; write a tuple")
    if isinstance(value, Tensor) or not isinstance(value, Sequence | torch.Size):
        raise refuse(value, f"it is a {_kind(value)}")
    sizes: list[int] = []
    for position, item in enumerate(value):
        size = _as_int(item)
        if size is None:
            raise refuse(tuple(value), f"size {position} is {item!r} ({_kind(item)}), not an "
                                       f"integer")
        if size < 1:
            raise refuse(tuple(value), f"size {position} is {size}")
        sizes.append(size)
    if rank is not None and len(sizes) != rank:
        raise refuse(tuple(value), f"it has {len(sizes)} sizes")
    return tuple(sizes)


def as_tolerance(value: object, what: str = "tolerance") -> float:
    """``value`` as a finite number of 0 or more (a bool, NaN, inf or negative is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PartitionError(f"{what} must be a finite number of 0 or more, got {value!r} "
                             f"({_kind(value)})")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise PartitionError(f"{what} must be a finite number of 0 or more, got {value!r}")
    return number


def as_int_in(value: object, what: str, low: int, high: int) -> int:
    """``value`` as an integer from ``low`` to ``high`` (a bool or a float is refused)."""
    number = _as_int(value)
    if number is None or not low <= number <= high:
        raise PartitionError(f"{what} must be an integer from {low} to {high}, got {value!r} "
                             f"({_kind(value)})")
    return number


def as_positive_seconds(value: object, what: str) -> float:
    """``value`` as a finite number of seconds greater than 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise PartitionError(f"{what} must be a finite number of seconds greater than 0, got "
                             f"{value!r} ({_kind(value)})")
    return float(value)


def as_seed(value: object, what: str = "seed") -> int:
    """``value`` as a random seed: an integer from 0 to 2**63 - 1."""
    seed = _as_int(value)
    if seed is None or not 0 <= seed <= _MAX_SEED:
        raise PartitionError(f"{what} must be an integer from 0 to 2**63 - 1, got {value!r} "
                             f"({_kind(value)})")
    return seed


def check_tensor_input(x: object, what: str = "input") -> Tensor:
    """``x`` if it is a float32 tensor on the CPU with ordinary (strided) storage."""
    if not isinstance(x, Tensor):
        raise PartitionError(f"{what} must be a torch.Tensor of dtype float32, got "
                             f"{_kind(x)} {_short(x)}")
    if x.device.type != "cpu":
        raise PartitionError(f"{what} is on device '{x.device}'; the partitioned inference runs "
                             f"on the CPU: pass a CPU tensor (x.to('cpu'), after filling a meta "
                             f"tensor with data)")
    if x.layout != torch.strided:
        raise PartitionError(f"{what} has layout {x.layout}; pass a dense tensor (x.to_dense())")
    if x.dtype != torch.float32:
        raise PartitionError(f"{what} dtype {x.dtype} is not supported; use torch.float32 "
                             f"(x.float())")
    return x


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

