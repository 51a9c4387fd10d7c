"""Whether a model's weights (or its layers' settings) changed since a moment.

A partitioned model runs on tensors taken from the model when it was partitioned: views of
most weights, and computed copies where a BatchNorm was folded into a convolution. After
``model.load_state_dict(...)``, an in-place edit or a swapped layer, the copies are stale.
:class:`WeightWatch` notices such changes so the partitioned model can derive its tensors
again (or refuse), and :func:`weights_token` gives a key that changes with the weights, for
caches of the model's outputs.

What is compared, cheaply on every call: each parameter and buffer's identity, storage address,
in-place version counter, shape, strides, dtype and device, and each module's type and
settings (its ``extra_repr``: stride, padding, eps, ...). That catches ``load_state_dict``,
``copy_``/``mul_`` under ``no_grad``, ``nn.init``, ``param.data = ...`` and replaced layers.
An edit through ``param.data`` in place (``p.data.mul_(2)``) bumps no version counter: for the
tensors the partitioned model holds no view of (the ones it computed copies from) a copy is
kept and compared by value, so that edit is caught too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

__all__ = ["WeightWatch", "weights_token"]

_Entry = tuple[object, ...]


def _version(t: Tensor) -> int | None:
    """The in-place version counter, or None for tensors without one (inference tensors)."""
    try:
        return int(t._version)
    except RuntimeError:
        return None


def _named_tensors(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    yield from model.named_parameters(remove_duplicate=False)
    for name, buf in model.named_buffers(remove_duplicate=False):
        if buf is not None:
            yield name, buf


def _tensor_entry(name: str, t: Tensor) -> _Entry:
    address = t.data_ptr() if t.device.type != "meta" else 0
    return (name, id(t), address, _version(t), tuple(t.shape), tuple(t.stride()), t.dtype,
            str(t.device))


def _module_entry(name: str, m: nn.Module) -> _Entry:
    try:
        settings = m.extra_repr()
    except Exception:  # a user's extra_repr that fails says nothing we can compare
        settings = ""
    return (name, id(m), type(m), settings, m.training)


def weights_token(model: nn.Module) -> tuple[_Entry, ...]:
    """A value that changes whenever the model's weights or layer settings change.

    Equal tokens mean the same tensors, unchanged in place (by their version counters), in
    the same layers with the same settings. See the module docstring for what it cannot see.
    """
    return (*(_tensor_entry(n, t) for n, t in _named_tensors(model)),
            *(_module_entry(n, m) for n, m in model.named_modules(remove_duplicate=False)))


def _storage_address(t: Tensor) -> int:
    if t.device.type == "meta":
        return 0
    return int(t.untyped_storage().data_ptr())


def _same_values(a: Tensor, b: Tensor) -> bool:
    """Equal shapes and values, NaN equal to NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return torch.equal(a, b)


class WeightWatch:
    """The state of a model's weights at one moment, and whether it has changed since.

    ``held`` are the tensors the caller keeps from the model (views share its storage and
    follow in-place edits by themselves). Model tensors outside them are copied, so that an
    in-place edit through ``.data`` of a tensor the caller only derived something from is
    seen as well.
    """

    def __init__(self, model: nn.Module, held: Iterable[Tensor] = ()) -> None:
        self.model = model
        self.token = weights_token(model)
        shared = {_storage_address(t) for t in held}
        self._copies: list[tuple[Tensor, Tensor]] = []
        with torch.no_grad():
            for _, t in _named_tensors(model):
                if t.device.type != "meta" and _storage_address(t) not in shared:
                    self._copies.append((t, t.detach().clone()))

    def changed(self) -> bool:
        """True when a weight, buffer or layer setting differs from when the watch began."""
        if weights_token(self.model) != self.token:
            return True
        with torch.no_grad():
            return not all(_same_values(live.detach(), copy) for live, copy in self._copies)
