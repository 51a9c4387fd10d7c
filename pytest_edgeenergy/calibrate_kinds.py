"""Measure this host's MAC rate per kind of layer, for a profile's ``[macs_per_s_by_kind]``.

``python -m pytest_edgeenergy calibrate --per-kind ...`` times, besides the profile's
``macs_per_s``, a few layers of each kind with torch at batch 1 (fp32) and appends the table to
the profile it writes:

* ``conv``: the 3x3 convolutions of ResNet-18's four stages (those ``macs_per_s`` is timed on);
* ``pointwise``: 1x1 convolutions of MobileNetV2's inverted residual blocks;
* ``depthwise``: the 3x3 depthwise convolutions of the same blocks;
* ``linear``: a classifier head and a large fully connected layer.

Element-wise layers and pools are not timed: plans count no MACs for them, so their duration is
their memory traffic at ``mem_bytes_per_s`` whatever the table says.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from pytest_edgeenergy.calibrate import CONV_LAYERS, ConvShape, _best_time_s

__all__ = ["KIND_LAYERS", "Layer", "measure_kind_rates", "render_kind_table"]


@dataclasses.dataclass(frozen=True)
class Layer:
    """One timed layer: a conv2d (``kernel``, ``groups``) on a square map, or a linear layer
    (``size`` 0)."""

    in_features: int
    out_features: int
    size: int = 0
    kernel: int = 1
    groups: int = 1

    @property
    def macs(self) -> int:
        """MACs at batch 1: outputs x fan-in."""
        if self.size == 0:
            return self.in_features * self.out_features
        fan_in = self.in_features // self.groups * self.kernel * self.kernel
        return self.out_features * self.size * self.size * fan_in

    def __str__(self) -> str:
        """E.g. ``144->144 3x3/144 @56x56`` or ``1280->1000 linear``."""
        if self.size == 0:
            return f"{self.in_features}->{self.out_features} linear"
        g = f"/{self.groups}" if self.groups > 1 else ""
        k, s = self.kernel, self.size
        return f"{self.in_features}->{self.out_features} {k}x{k}{g} @{s}x{s}"


def _from_conv(shape: ConvShape) -> Layer:
    return Layer(shape.in_channels, shape.out_channels, shape.size, shape.kernel)


# MobileNetV2 at 224x224 (Sandler et al. 2018, table 2): expansion 6, blocks at 56, 28, 14, 7.
_MBV2 = ((24, 144, 56), (32, 192, 28), (64, 384, 14), (160, 960, 7))

KIND_LAYERS: Final[dict[str, tuple[Layer, ...]]] = {
    "conv": tuple(_from_conv(s) for s in CONV_LAYERS),
    "pointwise": tuple(Layer(c, e, s) for c, e, s in _MBV2),
    "depthwise": tuple(Layer(e, e, s, 3, e) for _, e, s in _MBV2),
    "linear": (Layer(1280, 1000), Layer(4096, 4096)),
}
"""The layers timed for each kind."""


def _module(layer: Layer) -> Callable[[], object]:
    import torch

    if layer.size == 0:
        linear = torch.nn.Linear(layer.in_features, layer.out_features).eval()
        return functools.partial(linear, torch.randn(1, layer.in_features))
    conv = torch.nn.Conv2d(layer.in_features, layer.out_features, layer.kernel,
                           padding=layer.kernel // 2, groups=layer.groups).eval()
    return functools.partial(conv, torch.randn(1, layer.in_features, layer.size, layer.size))


def measure_kind_rates(seconds: float,
                       layers: Mapping[str, Sequence[Layer]] = KIND_LAYERS) -> dict[str, float]:
    """Each kind's rate: the MACs of its layers over the sum of their best times."""
    import torch

    per_layer_s = seconds / sum(len(v) for v in layers.values())
    rates: dict[str, float] = {}
    with torch.inference_mode():
        for kind, timed in layers.items():
            total_s = sum(_best_time_s(_module(layer), per_layer_s) for layer in timed)
            rates[kind] = sum(layer.macs for layer in timed) / total_s
    return rates


def render_kind_table(rates: Mapping[str, float], how: str) -> str:
    """The ``macs_per_s_by_kind`` table as dotted keys (``macs_per_s_by_kind.conv = ...``, so
    lines added after it stay top-level keys), each rate with the layers it was measured on."""
    lines = ["", f"# Measured {how}: MACs of the layers listed over the sum of their best times",
             "# (fp32, batch 1). Used by the schedule under the scenario compute=per-kind."]
    for kind, rate in rates.items():
        layers = ", ".join(str(layer) for layer in KIND_LAYERS.get(kind, ()))
        lines += [f"# {kind}: {layers}", f"macs_per_s_by_kind.{kind} = {rate:.3e}"]
    return "\n".join(lines) + "\n"
