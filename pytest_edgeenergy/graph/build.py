"""Build a :class:`LayerGraph` from an ``nn.Module`` with torch.fx, on meta tensors.

Three small passes over the traced graph:

1. shape propagation on meta tensors (parameters swapped for meta copies: nothing real runs);
2. classification of every fx node into an op, dropping identities (Dropout, Identity);
3. rewriting: eval-mode BatchNorm folded into the convolution before it, activations fused
   into the layer that produces their input when nothing else reads that input.

Anything the graph does not know becomes a :class:`PartitionError` naming the layer and its
type, before anything runs (``partition()`` adds the strategy it was building for).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ..errors import PartitionError
from .layergraph import Layer, LayerGraph
from .ops import (
    Activation,
    AdaptiveAvgPool,
    Add,
    Affine,
    Cat,
    Conv,
    Elementwise,
    Flatten,
    Linear,
    Op,
    Pad,
    Pool,
    Reorg,
)

SUPPORTED = (
    "Conv2d, BatchNorm2d, ReLU, ReLU6, LeakyReLU, SiLU, Hardswish, Sigmoid, MaxPool2d, AvgPool2d, "
    "AdaptiveAvgPool2d, Flatten, Linear, Dropout, Identity, PixelUnshuffle (reorg), constant pad, "
    "residual add, channel concat"
)

_ACT_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.Sigmoid: "sigmoid",
}
_ACT_FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu_: "relu", F.relu6: "relu6",
    F.leaky_relu: "leaky_relu", F.silu: "silu", F.hardswish: "hardswish",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
}
_ACT_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Identity)
_IDENTITY_FUNCTIONS: tuple[Callable[..., Any], ...] = (F.dropout, F.dropout2d)
_IDENTITY_METHODS = ("contiguous",)
_ADD_FUNCTIONS: tuple[Callable[..., Any], ...] = (operator.add, operator.iadd, torch.add)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


@dataclass
class _Raw:
    """A classified fx node before folding and fusion."""

    name: str
    kind: str  # input, op, act, bn, identity
    inputs: list[str]
    shape: tuple[int, ...]  # with batch
    source: str
    make: Callable[[list[tuple[int, ...]], tuple[int, ...]], Op] | None = None
    act: Activation | None = None
    bn: nn.Module | None = None
    conv: nn.Conv2d | None = None
    users: list[str] = field(default_factory=list)


class _MetaShapes(fx.Interpreter):
    """Runs a traced module on meta tensors, recording each node's output shape."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.shapes: dict[str, Any] = {}

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        mod = self.fetch_attr(target)
        meta = {k: torch.empty_like(v, device="meta")
                for k, v in list(mod.named_parameters()) + list(mod.named_buffers())}
        return torch.func.functional_call(mod, meta, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except PartitionError:
            raise
        except Exception as exc:  # a real shape error from torch, reported with the layer
            raise _ShapeError(n, exc) from exc
        self.shapes[n.name] = result
        return result


class _ShapeError(Exception):
    def __init__(self, node: fx.Node, exc: Exception) -> None:
        super().__init__(str(exc))
        self.node = node
        self.exc = exc


def _node_label(gm: fx.GraphModule, n: fx.Node) -> tuple[str, str]:
    """(layer name, type name) of an fx node for messages."""
    if n.op == "call_module":
        return str(n.target), type(gm.get_submodule(str(n.target))).__name__
    if n.op == "call_function":
        return n.name, getattr(n.target, "__name__", str(n.target))
    if n.op == "call_method":
        return n.name, f"Tensor.{n.target}"
    return n.name, n.op


def build_graph(model: nn.Module, input_shape: Sequence[int]) -> LayerGraph:
    """Trace ``model`` and return its layer graph for an input of ``input_shape`` (N, C, H, W)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or any(s < 1 for s in shape):
        raise PartitionError(f"input shape {shape} is not (N, C, H, W) with positive sizes")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:
        raise PartitionError(
            f"model {type(model).__name__} cannot be traced by torch.fx: {exc}") from exc
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise PartitionError(
            f"model {type(model).__name__} takes {len(placeholders)} inputs; exactly one image "
            "tensor is supported")
    prop = _MetaShapes(gm)
    try:
        with torch.no_grad():
            prop.run(torch.empty(shape, device="meta"))
    except _ShapeError as err:
        name, kind = _node_label(gm, err.node)
        first = str(err.exc).strip().splitlines()[0] if str(err.exc).strip() else repr(err.exc)
        raise PartitionError(
            f"input shape {shape} does not fit model {type(model).__name__}: layer '{name}' "
            f"({kind}) fails with: {first}") from err.exc
    raws = _classify(gm, prop.shapes)
    return _rewrite(raws, shape)


def _classify(gm: fx.GraphModule, shapes: dict[str, Any]) -> list[_Raw]:
    out: list[_Raw] = []
    alias: dict[str, str] = {}

    def ref(a: Any) -> str:
        assert isinstance(a, fx.Node)
        return alias.get(a.name, a.name)

    def shape_of(n: fx.Node) -> tuple[int, ...]:
        v = shapes[n.name]
        if not isinstance(v, Tensor):
            name, kind = _node_label(gm, n)
            raise PartitionError(
                f"layer '{name}' ({kind}) produces {type(v).__name__}, not a tensor; it is not "
                "supported")
        return tuple(int(s) for s in v.shape)

    for n in gm.graph.nodes:
        if n.op == "output":
            res = n.args[0]
            if not isinstance(res, fx.Node):
                raise PartitionError(
                    f"the model returns {type(res).__name__}; exactly one output tensor is "
                    "supported")
            out.append(_Raw(name="@output", kind="output", inputs=[ref(res)], shape=(),
                            source="output"))
            continue
        if n.op == "placeholder":
            out.append(_Raw(name=n.name, kind="input", inputs=[], shape=shape_of(n),
                            source=n.name))
            continue
        name, kind = _node_label(gm, n)

        def unsupported(why: str = "", name: str = name, kind: str = kind) -> PartitionError:
            extra = f" ({why})" if why else ""
            return PartitionError(
                f"layer '{name}' of type {kind} is not supported"
                f"{extra}; supported: {SUPPORTED}")

        tensor_args = [a for a in n.args if isinstance(a, fx.Node)]
        if n.op == "get_attr":
            raise unsupported("reads a parameter directly")
        oshape = shape_of(n)
        raw = _Raw(name=n.name, kind="op", inputs=[], shape=oshape, source=name)
        if n.op == "call_module":
            mod = gm.get_submodule(str(n.target))
            _module(raw, mod, n, ref, shapes, unsupported)
        elif n.op == "call_function":
            _function(raw, n, ref, shapes, unsupported)
        elif n.op == "call_method":
            if n.target in _ACT_METHODS:
                raw.kind, raw.act = "act", Activation(_ACT_METHODS[str(n.target)])
                raw.inputs = [ref(n.args[0])]
            elif n.target in _IDENTITY_METHODS:
                raw.kind, raw.inputs = "identity", [ref(n.args[0])]
            elif n.target == "flatten":
                _flatten(raw, n, ref, shapes, unsupported, list(n.args[1:]), dict(n.kwargs))
            else:
                raise unsupported()
        else:  # pragma: no cover - fx has no other node kinds
            raise unsupported()
        if raw.kind == "identity":
            alias[n.name] = raw.inputs[0]
            continue
        if not raw.inputs and tensor_args:
            raw.inputs = [ref(a) for a in tensor_args]
        out.append(raw)
    return out


def _module(raw: _Raw, mod: nn.Module, n: fx.Node, ref: Callable[[Any], str],
            shapes: dict[str, Any], unsupported: Callable[..., PartitionError]) -> None:
    raw.inputs = [ref(n.args[0])] if n.args else []
    in_shape = _shape_of_arg(shapes, n.args[0]) if n.args else ()
    if isinstance(mod, _IDENTITY_MODULES):
        raw.kind = "identity"
    elif type(mod) in _ACT_MODULES:
        slope = float(getattr(mod, "negative_slope", 0.01))
        raw.kind, raw.act = "act", Activation(_ACT_MODULES[type(mod)], slope)
    elif isinstance(mod, nn.Conv2d):
        if mod.padding_mode != "zeros":
            raise unsupported(f"padding_mode={mod.padding_mode!r}")
        raw.conv = mod
        padding = _conv_padding(mod, unsupported)
        w = mod.weight.detach()
        b = None if mod.bias is None else mod.bias.detach()
        groups = int(mod.groups)
        stride, dilation = _pair(mod.stride), _pair(mod.dilation)
        raw.make = lambda ins, o: Conv(ins, o, weight=w, bias=b, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups)
    elif isinstance(mod, nn.BatchNorm2d):
        if mod.running_mean is None or mod.running_var is None:
            raise unsupported("BatchNorm without running statistics cannot be folded")
        raw.kind, raw.bn = "bn", mod
    elif isinstance(mod, nn.MaxPool2d | nn.AvgPool2d):
        _pool(raw, "max" if isinstance(mod, nn.MaxPool2d) else "avg", mod.kernel_size, mod.stride,
              mod.padding, getattr(mod, "dilation", 1), mod.ceil_mode,
              getattr(mod, "count_include_pad", True), getattr(mod, "divisor_override", None),
              getattr(mod, "return_indices", False), unsupported)
    elif isinstance(mod, nn.AdaptiveAvgPool2d):
        raw.make = lambda ins, o: AdaptiveAvgPool(ins, o)
    elif isinstance(mod, nn.Flatten):
        _flatten(raw, n, ref, shapes, unsupported, [mod.start_dim, mod.end_dim], {})
    elif isinstance(mod, nn.Linear):
        if len(in_shape) != 2:
            raise unsupported(f"Linear on a {len(in_shape)}-D input; only (N, F) is supported")
        w = mod.weight.detach()
        b = None if mod.bias is None else mod.bias.detach()
        raw.make = lambda ins, o: Linear(ins, o, weight=w, bias=b)
    elif isinstance(mod, nn.PixelUnshuffle):
        s = int(mod.downscale_factor)
        raw.make = lambda ins, o: Reorg(ins, o, stride=s)
    elif isinstance(mod, nn.ZeroPad2d | nn.ConstantPad2d):
        _pad(raw, mod.padding, float(getattr(mod, "value", 0.0)), unsupported)
    else:
        raise unsupported()


def _conv_padding(mod: nn.Conv2d, unsupported: Callable[..., PartitionError]) -> tuple[int, int]:
    if isinstance(mod.padding, str):
        if mod.padding == "valid":
            return (0, 0)
        pads = []
        for k, d in zip(_pair(mod.kernel_size), _pair(mod.dilation), strict=True):
            total = d * (k - 1)
            if total % 2:
                raise unsupported("padding='same' with an even kernel pads asymmetrically")
            pads.append(total // 2)
        return (pads[0], pads[1])
    return _pair(mod.padding)


def _pool(raw: _Raw, mode: str, kernel: Any, stride: Any, padding: Any, dilation: Any,
          ceil_mode: bool, count_include_pad: bool, divisor_override: int | None,
          return_indices: bool, unsupported: Callable[..., PartitionError]) -> None:
    if return_indices:
        raise unsupported("return_indices=True")
    k = _pair(kernel)
    s = _pair(stride) if stride not in (None, [], ()) else k
    p, d = _pair(padding), _pair(dilation)
    raw.make = lambda ins, o: Pool(ins, o, mode=mode, kernel=k, stride=s, padding=p, dilation=d,
                                   ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                                   divisor_override=divisor_override)


def _pad(raw: _Raw, pad: Any, value: float, unsupported: Callable[..., PartitionError]) -> None:
    p = [int(x) for x in (pad if isinstance(pad, Sequence) else [pad] * 4)]
    if len(p) == 2:
        p += [0, 0]
    if len(p) != 4 or any(x < 0 for x in p):
        raise unsupported(f"padding {tuple(p)}: only non-negative padding of H and W is supported")
    left, right, top, bottom = p
    raw.make = lambda ins, o: Pad(ins, o, left=left, right=right, top=top, bottom=bottom,
                                  value=value)


def _flatten(raw: _Raw, n: fx.Node, ref: Callable[[Any], str], shapes: dict[str, Any],
             unsupported: Callable[..., PartitionError], args: list[Any],
             kwargs: dict[str, Any]) -> None:
    raw.inputs = [ref(n.args[0])]
    start = int(kwargs.get("start_dim", args[0] if args else 0))
    end = int(kwargs.get("end_dim", args[1] if len(args) > 1 else -1))
    in_shape = _shape_of_arg(shapes, n.args[0])
    if start != 1 or end not in (-1, len(in_shape) - 1):
        raise unsupported(f"flatten(start_dim={start}, end_dim={end}); only flatten from dim 1")
    if len(in_shape) == 2:
        raw.kind = "identity"
    else:
        raw.make = lambda ins, o: Flatten(ins, o)


def _shape_of_arg(shapes: dict[str, Any], arg: Any) -> tuple[int, ...]:
    """Shape (with batch) of the tensor an fx argument refers to."""
    assert isinstance(arg, fx.Node)
    return tuple(int(s) for s in shapes[arg.name].shape)


def _arg(n: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if name in n.kwargs:
        return n.kwargs[name]
    return n.args[i] if len(n.args) > i else default


def _function(raw: _Raw, n: fx.Node, ref: Callable[[Any], str], shapes: dict[str, Any],
              unsupported: Callable[..., PartitionError]) -> None:
    t = n.target
    first = n.args[0] if n.args else None
    if t in _ACT_FUNCTIONS:
        slope = float(_arg(n, 1, "negative_slope", 0.01)) if t is F.leaky_relu else 0.01
        raw.kind, raw.act = "act", Activation(_ACT_FUNCTIONS[t], slope)
        raw.inputs = [ref(first)]
    elif t in _IDENTITY_FUNCTIONS:
        if _arg(n, 2, "training", True):
            raise unsupported("dropout in training mode")
        raw.kind, raw.inputs = "identity", [ref(first)]
    elif t in _ADD_FUNCTIONS:
        a, b = first, _arg(n, 1, "other")
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)) or "alpha" in n.kwargs:
            raise unsupported("only the sum of two tensors is supported")
        if tuple(shapes[a.name].shape) != tuple(shapes[b.name].shape):
            raise unsupported("adding tensors of different shapes (broadcasting)")
        raw.inputs = [ref(a), ref(b)]
        raw.make = lambda ins, o: Add(ins, o)
    elif t is torch.cat or t is torch.concat:
        tensors = list(_arg(n, 0, "tensors"))
        dim = int(_arg(n, 1, "dim", 0))
        if dim not in (1, -3) or len(shapes[n.name].shape) != 4:
            raise unsupported(
                f"concatenation along dim {dim}; only channels (dim 1) of 4-D tensors")
        raw.inputs = [ref(a) for a in tensors]
        raw.make = lambda ins, o: Cat(ins, o)
    elif t is torch.flatten:
        _flatten(raw, n, ref, shapes, unsupported, list(n.args[1:]), dict(n.kwargs))
    elif t in (F.max_pool2d, F.avg_pool2d):
        is_max = t is F.max_pool2d
        k = _arg(n, 1, "kernel_size")
        s = _arg(n, 2, "stride")
        p = _arg(n, 3, "padding", 0)
        if is_max:
            d = _arg(n, 4, "dilation", 1)
            ceil = bool(_arg(n, 5, "ceil_mode", False))
            ri = bool(_arg(n, 6, "return_indices", False))
            _pool(raw, "max", k, s, p, d, ceil, True, None, ri, unsupported)
        else:
            ceil = bool(_arg(n, 4, "ceil_mode", False))
            cip = bool(_arg(n, 5, "count_include_pad", True))
            dov = _arg(n, 6, "divisor_override", None)
            _pool(raw, "avg", k, s, p, 1, ceil, cip, dov, False, unsupported)
        raw.inputs = [ref(first)]
    elif t is F.adaptive_avg_pool2d:
        raw.inputs = [ref(first)]
        raw.make = lambda ins, o: AdaptiveAvgPool(ins, o)
    elif t is F.pixel_unshuffle:
        s = int(_arg(n, 1, "downscale_factor"))
        raw.inputs = [ref(first)]
        raw.make = lambda ins, o: Reorg(ins, o, stride=s)
    elif t is F.pad:
        mode = _arg(n, 2, "mode", "constant")
        if mode != "constant":
            raise unsupported(f"pad mode {mode!r}; only constant padding")
        value = _arg(n, 3, "value", None)
        raw.inputs = [ref(first)]
        _pad(raw, _arg(n, 1, "pad"), 0.0 if value is None else float(value), unsupported)
    else:
        raise unsupported()


def _bn_affine(bn: nn.Module) -> tuple[Tensor, Tensor]:
    """An eval-mode BatchNorm as per-channel ``scale`` and ``shift``: y = x * scale + shift."""
    assert isinstance(bn, nn.BatchNorm2d)
    assert bn.running_var is not None and bn.running_mean is not None
    with torch.no_grad():
        scale = (bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var))
        scale = scale / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_mean)
        return scale, shift - bn.running_mean * scale


def _fold_bn(conv_w: Tensor, conv_b: Tensor | None, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Eval-mode BatchNorm after a convolution, folded into its weight and bias."""
    scale, shift = _bn_affine(bn)
    with torch.no_grad():
        b = conv_b if conv_b is not None else torch.zeros_like(shift)
        return (conv_w * scale.view(-1, 1, 1, 1)).contiguous(), b * scale + shift


def _rewrite(raws: list[_Raw], input_shape: tuple[int, ...]) -> LayerGraph:
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
                w, b = _fold_bn(conv_layer.op.weight, conv_layer.op.bias, r.bn)  # type: ignore[arg-type]
                conv_layer.op.weight, conv_layer.op.bias = w, b
                conv_layer.source += f"+{r.source}"
                alias[r.name] = conv_layer.name
                by_name[conv_layer.name].users = by_name[r.name].users
                continue
            scale, shift = _bn_affine(r.bn)  # type: ignore[arg-type]
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
