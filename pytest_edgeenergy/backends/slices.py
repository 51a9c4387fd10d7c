"""Only the weight slices a rank needs: a rank's copy of the layer graph.

A rank on another host receives a layer graph in which every parameter tensor of every layer is
replaced by a :class:`HeldSlices`: the blocks of that tensor its own tasks read (the plan's
weight slices: a range of output channels, and of input channels for an input-channel partial
sum), copied out of the full tensor, and nothing else. Indexing a :class:`HeldSlices` the way
the ops index a parameter (``weight[o0:o1]``, ``weight[o0:o1, i0:i1]``, ``bias[o0:o1]``)
returns the same values the full tensor would; an index outside every held block raises, so a
missing slice is an error, never a wrong result. :func:`held_bytes` is what the rank holds,
which must equal the plan's weight bytes for its device (:func:`check_held`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import Tensor

from ..errors import PartitionError
from ..graph.layergraph import Layer, LayerGraph
from ..graph.ops import WeightSlice
from ..plan import Plan

__all__ = ["HeldSlices", "check_held", "held_bytes", "slice_graph"]

# Parameters that a WeightSlice's ``weights`` / ``bias`` flags select; any other tensor
# attribute of a weighted op (a BatchNorm's scale and shift) goes with every slice.
_FLAG = {"weight": "weights", "bias": "bias"}


@dataclass(slots=True)
class HeldSlices:
    """Blocks of a parameter of full shape ``shape``: each a start per leading dimension and
    a contiguous copy."""

    name: str  # "conv3.weight", for messages
    shape: tuple[int, ...]
    blocks: list[tuple[tuple[int, ...], Tensor]]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() * t.element_size() for _, t in self.blocks)

    def __getitem__(self, key: object) -> Tensor:
        keys = key if isinstance(key, tuple) else (key,)
        wanted: list[tuple[int, int]] = []
        for dim, k in enumerate(keys):
            if not isinstance(k, slice) or k.step not in (None, 1):
                raise PartitionError(f"{self.name}: index {key!r} is not a range of slices")
            start, stop, _ = k.indices(self.shape[dim])
            wanted.append((start, stop))
        for starts, block in self.blocks:
            local: list[slice] = []
            for dim, (a, b) in enumerate(wanted):
                s0 = starts[dim] if dim < len(starts) else 0
                if a < s0 or b > s0 + block.shape[dim]:
                    break
                local.append(slice(a - s0, b - s0))
            else:
                return block[tuple(local)]
        raise PartitionError(f"{self.name}: this rank does not hold {wanted} of a parameter of "
                             f"shape {self.shape} (it holds only its planned weight slices)")


def _block(t: Tensor, w: WeightSlice) -> tuple[tuple[int, ...], Tensor]:
    o0, o1 = w.out
    if w.inp is not None and t.dim() >= 2:
        i0, i1 = w.inp
        return (o0, i0), t[o0:o1, i0:i1].contiguous().clone()
    return (o0,), t[o0:o1].contiguous().clone()


def _params(layer: Layer) -> dict[str, Tensor]:
    return {k: v for k, v in vars(layer.op).items() if isinstance(v, Tensor)}


def slice_graph(graph: LayerGraph, plan: Plan, device: int) -> LayerGraph:
    """A copy of ``graph`` whose parameters hold only ``device``'s weight slices in ``plan``
    (and none for the layers it does not compute)."""
    slices: dict[str, dict[tuple[object, ...], WeightSlice]] = {}
    for t in plan.tasks:
        if t.device == device and t.weight is not None:
            slices.setdefault(t.layer, {})[t.weight.key()] = t.weight
    layers: list[Layer] = []
    for layer in graph.layers:
        params = _params(layer)
        if not params or not layer.op.has_weights:
            layers.append(layer)
            continue
        op = copy.copy(layer.op)
        for name, full in params.items():
            blocks: dict[tuple[object, ...], tuple[tuple[int, ...], Tensor]] = {}
            for w in slices.get(layer.name, {}).values():
                flag = _FLAG.get(name)
                if flag is not None and not getattr(w, flag):
                    continue
                starts, block = _block(full, w)
                blocks[(starts, tuple(block.shape))] = (starts, block)
            setattr(op, name, HeldSlices(f"{layer.name}.{name}", tuple(full.shape),
                                         list(blocks.values())))
        layers.append(Layer(layer.name, op, layer.inputs, layer.post, layer.source))
    return LayerGraph(graph.input_name, graph.input_shape, layers, graph.output)


def held_bytes(graph: LayerGraph) -> int:
    """Bytes of parameters ``graph`` holds (held slices, or whole tensors)."""
    total = 0
    for layer in graph.layers:
        for value in vars(layer.op).values():
            if isinstance(value, HeldSlices):
                total += value.nbytes
            elif isinstance(value, Tensor) and layer.op.has_weights:
                total += value.numel() * value.element_size()
    return total


def check_held(graph: LayerGraph, plan: Plan, device: int) -> int:
    """The parameter bytes ``graph`` holds; a :class:`PartitionError` unless they equal the
    plan's weight bytes for ``device``."""
    held = held_bytes(graph)
    planned = plan.device_stats()[device].weight_bytes
    if held != planned:
        raise PartitionError(f"device {device} holds {held:,} B of parameters but its planned "
                             f"weight slices are {planned:,} B")
    return held


