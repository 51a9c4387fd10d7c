"""Build a :class:`LayerGraph` from an ``nn.Module``, on meta tensors.

Three small passes:

1. capture (:mod:`.capture`): torch.fx tracing with every node evaluated on meta tensors as
   it is recorded (nothing real runs), so shape queries in ``forward`` are plain integers;
2. classification (:mod:`.classify`) of every node into an op; constants (parameters, buffers
   and what ``forward`` computes from them alone) evaluated once, identities dropped;
3. rewriting: eval-mode BatchNorm folded into the convolution before it, activations fused
   into the layer that produces their input when nothing else reads that input.

Anything the graph does not know becomes a :class:`PartitionError` naming the layer and its
type, before anything runs (``partition()`` adds the strategy it was building for). A node
that fails while shapes are computed is reported as a fault of the input shape only when the
real model fails on that shape too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..checks import as_shape
from ..errors import PartitionError
from .capture import CaptureError, capture
from .classify import SUPPORTED, Classifier, Raw
from .layergraph import Layer, LayerGraph
from .ops import Affine, Conv, Elementwise

__all__ = ["SUPPORTED", "build_graph"]


def build_graph(model: nn.Module, input_shape: Sequence[int]) -> LayerGraph:
    """Trace ``model`` and return its layer graph for an input of ``input_shape`` (N, C, H, W)."""
    shape = as_shape(input_shape)
    name = type(model).__name__
    try:
        gm, values = capture(model, shape)
    except CaptureError as err:
        raise _capture_failure(model, shape, err) from err.exc
    except PartitionError:
        raise
    except Exception as exc:
        raise PartitionError(
            f"model {name} cannot be traced by torch.fx: "
            f"{type(exc).__name__}: {_first_line(exc)}") from exc
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise PartitionError(
            f"model {name} takes {len(placeholders)} inputs; exactly one image "
            "tensor is supported")
    raws = Classifier(gm, values).run()
    return _rewrite(raws, shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def _capture_failure(model: nn.Module, shape: tuple[int, ...],
                     err: CaptureError) -> PartitionError:
    """The message for a node that failed while shapes were computed.

    The input shape is blamed only when the real model fails on it as well (one real forward
    pass of zeros, on this error path only); otherwise the capture itself is at fault and the
    message says so.
    """
    name, kind = err.label
    why = f"{type(err.exc).__name__}: {_first_line(err.exc)}"
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except Exception:
        return PartitionError(
            f"input shape {shape} does not fit model {type(model).__name__}: layer '{name}' "
            f"({kind}) fails with: {why}")
    return PartitionError(
        f"model {type(model).__name__} could not be captured: layer '{name}' ({kind}) fails when "
        f"its shapes are computed on meta tensors, with {why}; the model itself runs on input "
        f"shape {shape}, so the shape is not the problem")


def _fold_bn(conv_w: Tensor, conv_b: Tensor | None,
             bn: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Eval-mode BatchNorm (scale, shift) after a convolution, folded into its weight and bias."""
    scale, shift = bn
    with torch.no_grad():
        b = conv_b if conv_b is not None else torch.zeros_like(shift)
        return (conv_w * scale.view(-1, 1, 1, 1)).contiguous(), b * scale + shift


def _rewrite(raws: list[Raw], input_shape: tuple[int, ...]) -> LayerGraph:
    by_name = {r.name: r for r in raws}
    for r in raws:
        for i in r.inputs:
            by_name[i].users.append(r.name)
    input_name = next(r.name for r in raws if r.kind == "input")
    output = next(r for r in raws if r.kind == "output")
    alias: dict[str, str] = {}
    layers: dict[str, Layer] = {}
    order: list[str] = []

    def sole_reader(producer: str, reader: str) -> bool:
        return producer in layers and by_name[producer].users == [reader]

    def shape(t: str) -> tuple[int, ...]:
        return tuple(input_shape[1:]) if t == input_name else layers[t].out_shape

    for r in raws:
        if r.kind in ("input", "output"):
            continue
        ins = [alias.get(i, i) for i in r.inputs]
        src = ins[0] if ins else ""
        if r.kind == "bn":
            conv_layer = layers.get(src)
            if (conv_layer is not None and isinstance(conv_layer.op, Conv) and not conv_layer.post
                    and by_name[r.inputs[0]].users == [r.name]):
                assert r.bn is not None
                w, b = _fold_bn(conv_layer.op.weight, conv_layer.op.bias, r.bn)
                conv_layer.op.weight, conv_layer.op.bias = w, b
                conv_layer.source += f"+{r.source}"
                alias[r.name] = conv_layer.name
                by_name[conv_layer.name].users = by_name[r.name].users
                continue
            assert r.bn is not None
            scale, shift = r.bn
            out_shape = tuple(r.shape[1:])
            layer = Layer(r.name, Affine([shape(src)], out_shape, scale=scale, shift=shift),
                          (src,), source=r.source)
        elif r.kind == "act":
            assert r.act is not None
            if sole_reader(src, r.name):
                producer = layers[src]
                producer.post += (r.act,)
                producer.source += f"+{r.source}"
                alias[r.name] = producer.name
                by_name[producer.name].users = by_name[r.name].users
                continue
            out_shape = tuple(r.shape[1:])
            layer = Layer(r.name, Elementwise([shape(src)], out_shape), (src,), (r.act,),
                          source=r.source)
        else:
            assert r.make is not None
            in_shapes = [shape(i) for i in ins]
            layer = Layer(r.name, r.make(in_shapes, tuple(r.shape[1:])), tuple(ins),
                          source=r.source)
        layers[layer.name] = layer
        order.append(layer.name)
    out_name = alias.get(output.inputs[0], output.inputs[0])
    if out_name == input_name:
        raise PartitionError("the model returns its input unchanged; there is nothing to partition")
    return LayerGraph(input_name=input_name, input_shape=input_shape,
                      layers=[layers[n] for n in order], output=out_name)
