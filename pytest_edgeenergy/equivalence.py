"""The equivalence check: is a partitioned output the unpartitioned model's output?

Finite values are compared with an absolute tolerance of ``tolerance x max|finite reference|``.
Non-finite values are compared as such: a NaN must be a NaN at the same position, an infinity
the same infinity at the same position; a reference holding ``inf`` never makes the tolerance
infinite, and a NaN never crashes the check. Pure torch: no pytest here.

:class:`ReferenceCache` keeps the unpartitioned outputs, per model object and weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import weakref

import torch
from torch import Tensor, nn

from .checks import as_tolerance
from .errors import EdgeEnergyError, PartitionError
from .weightwatch import weights_token

__all__ = ["DEFAULT_TOLERANCE", "Equivalence", "ReferenceCache", "check_equivalence"]

DEFAULT_TOLERANCE = 1e-5
"""How far the partitioned output may be from the reference, relative to its largest value.

About 84 float32 ulps at the reference's largest magnitude. A partitioned inference sums the
same products in another order (partial sums, reductions, tiles), which moves the last bits;
the zoo's models land between 1e-7 and 2e-6 of max|ref| on every strategy, so 1e-5 leaves a
margin of five while still catching any misplaced row, channel or halo (those err by O(1)).
"""


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """The outcome: the largest error among finite values (None when there is none to
    measure), the absolute tolerance it was held to, and what differs (None: equivalent)."""

    max_abs_error: float | None
    atol: float
    problem: str | None

    @property
    def equivalent(self) -> bool:
        """True when the outputs are equal within the tolerance."""
        return self.problem is None


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    for size in reversed(shape):
        out.append(flat % size)
        flat //= size
    return tuple(reversed(out))


def check_equivalence(output: object, reference: Tensor,
                      tolerance: object = DEFAULT_TOLERANCE) -> Equivalence:
    """Compare ``output`` with ``reference``; see the module docstring for the rule.

    A ``tolerance`` that is not a finite number of 0 or more raises :class:`PartitionError`
    naming it: a negative or NaN tolerance would otherwise pass or fail everything.
    """
    tol = as_tolerance(tolerance)
    if not isinstance(reference, Tensor):
        raise PartitionError(f"the reference output is a {type(reference).__name__}, "
                             f"not a tensor")
    if not isinstance(output, Tensor):
        return Equivalence(None, 0.0, f"the partitioned output is a {type(output).__name__}, "
                                      f"not a tensor")
    if tuple(output.shape) != tuple(reference.shape):
        return Equivalence(None, 0.0, f"the partitioned output has shape "
                                      f"{tuple(output.shape)}, the reference "
                                      f"{tuple(reference.shape)}")
    if output.is_complex() or reference.is_complex():  # real and imaginary parts: last dim
        output, reference = (torch.view_as_real(t.detach().to(torch.complex128))
                             for t in (output, reference))
    shape = tuple(reference.shape)
    out = output.detach().to("cpu", torch.float64).flatten()
    ref = reference.detach().to("cpu", torch.float64).flatten()
    finite = torch.isfinite(ref)
    scale = float(ref[finite].abs().max()) if bool(finite.any()) else 0.0
    atol = tol * scale
    both = finite & torch.isfinite(out)
    errors = (out - ref).abs().where(both, torch.zeros_like(out))
    max_error = float(errors.max()) if bool(both.any()) else None

    # Non-finite values: the same NaNs, the same infinities, nowhere else.
    same_nan = torch.isnan(out) == torch.isnan(ref)
    same_inf = torch.where(torch.isinf(ref) | torch.isinf(out), out == ref, True)
    bad_special = ~(same_nan & same_inf)
    bad_finite = both & (errors > atol)
    problems: list[str] = []
    if bool(bad_special.any()):
        first = int(bad_special.nonzero()[0, 0])
        problems.append(f"in its non-finite values ({_where(bad_special, first, out, ref, shape)})")
    if bool(bad_finite.any()):
        worst = int(errors.argmax())
        problems.append(f"beyond {tol:g} x max|reference| = {atol:.3g} (max abs error "
                        f"{max_error:.3g}; {_where(bad_finite, worst, out, ref, shape)})")
    if not problems:
        return Equivalence(max_error, atol, None)
    return Equivalence(max_error, atol, "partitioned output differs from the unpartitioned "
                                        "model " + ", and ".join(problems))


def _where(mask: Tensor, at: int, out: Tensor, ref: Tensor, shape: tuple[int, ...]) -> str:
    """How many elements differ, and one of them."""
    return (f"{int(mask.sum())} of {ref.numel()} elements, e.g. at {_index(at, shape)}: "
            f"output {float(out[at]):.6g}, reference {float(ref[at]):.6g}")


class ReferenceCache:
    """Outputs of unpartitioned models, so each model runs once per input.

    Kept per model *object* (never per name: two models of one name are two models), for the
    model's current weights (:func:`~pytest_edgeenergy.weightwatch.weights_token`; a change
    of weights empties that model's entries) and the input's exact bytes. A model that is no
    longer used anywhere else is dropped with its outputs.
    """

    def __init__(self) -> None:
        self._outputs: weakref.WeakKeyDictionary[
            nn.Module, tuple[object, dict[tuple[object, ...], Tensor]]] = (
            weakref.WeakKeyDictionary())
        self.runs = 0
        """How many times a model really ran."""

    def output(self, model: nn.Module, x: Tensor, name: str) -> Tensor:
        """``model(x)`` (no gradients), run once per model, weights and input."""
        token = weights_token(model)
        held = self._outputs.get(model)
        if held is None or held[0] != token:
            held = (token, {})
            self._outputs[model] = held
        data = x.detach().contiguous()
        key = (tuple(x.shape), str(x.dtype), hashlib.sha256(data.numpy().tobytes()).hexdigest())
        cached = held[1].get(key)
        if cached is None:
            with torch.no_grad():
                out = model(x)
            if not isinstance(out, Tensor):
                raise EdgeEnergyError(f"model '{name}' returned {type(out).__name__}, not a "
                                      f"single tensor")
            held[1][key] = cached = out
            self.runs += 1
        return cached
