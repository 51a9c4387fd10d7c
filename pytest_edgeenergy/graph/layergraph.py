"""The layer graph: a model as a DAG of layers with shapes, MACs and bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from .box import Box
from .ops import FP32_BYTES, Activation, Op


@dataclass(slots=True)
class Layer:
    """One node of the graph: an op, the tensors it reads and the activations fused after it."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    post: tuple[Activation, ...] = ()
    source: str = ""  # the fx nodes / module paths it came from, for messages

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Output shape without the batch dimension."""
        return self.op.out_shape

    def describe(self) -> str:
        """The op and its fused activations, e.g. ``conv 64->64 k3x3 s1 p1 +relu``."""
        post = "".join(f" +{a}" for a in self.post)
        return f"{self.op.describe()}{post}"


@dataclass(slots=True)
class LayerGraph:
    """A CNN as layers in topological order, reading from one input and ending in one output."""

    input_name: str
    input_shape: tuple[int, ...]  # with the batch dimension
    layers: list[Layer]
    output: str
    by_name: dict[str, Layer] = field(init=False)
    _consumers: dict[str, list[tuple[Layer, int]]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {layer.name: layer for layer in self.layers}
        self._consumers = {self.input_name: []}
        for layer in self.layers:
            self._consumers.setdefault(layer.name, [])
            for i, t in enumerate(layer.inputs):
                self._consumers[t].append((layer, i))

    @property
    def batch(self) -> int:
        """Batch size of the input."""
        return self.input_shape[0]

    def shape(self, tensor: str) -> tuple[int, ...]:
        """Shape of a tensor without its batch dimension."""
        if tensor == self.input_name:
            return tuple(self.input_shape[1:])
        return self.by_name[tensor].out_shape

    def consumers(self, tensor: str) -> list[tuple[Layer, int]]:
        """The layers that read ``tensor``, with the input position they read it at."""
        return self._consumers[tensor]

    def tensor_bytes(self, tensor: str, box: Box | None = None) -> int:
        """Bytes of ``box`` (default: all) of ``tensor``, batch included."""
        n = Box.full(self.shape(tensor)).numel if box is None else box.numel
        return n * self.batch * FP32_BYTES

    def layer_macs(self, layer: Layer) -> int:
        """MACs of the whole layer, batch included."""
        return layer.op.macs(Box.full(layer.out_shape), None) * self.batch

    def total_macs(self) -> int:
        """MACs of one unpartitioned inference."""
        return sum(self.layer_macs(layer) for layer in self.layers)

    def total_weight_bytes(self) -> int:
        """Bytes of all parameters (after BatchNorm folding)."""
        return sum(layer.op.weight_bytes(None) for layer in self.layers)

    def summary(self) -> str:
        """One line per layer: name, op, output shape, MACs."""
        lines = [f"input {self.input_name} {tuple(self.input_shape)}"]
        for layer in self.layers:
            lines.append(f"{layer.name:<28} {layer.describe():<44} -> {layer.out_shape} "
                         f"macs={self.layer_macs(layer):,}")
        return "\n".join(lines)
