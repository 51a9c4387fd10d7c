"""Classify the nodes of a captured fx graph into layer-graph ops.

Model libraries write the same layer many ways: ``nn.BatchNorm2d``, or a subclass whose forward
calls ``F.batch_norm`` with its own buffers; ``nn.AdaptiveAvgPool2d(1)`` or
``x.mean((2, 3), keepdim=True)``; ``nn.Hardswish`` or ``x * F.relu6(x + 3) / 6``; a channel
shuffle as ``view``-``transpose``-``view``. This module maps each spelling to one op:

* nodes that do not depend on the input (parameters and buffers read with ``get_attr``, weights
  reshaped or standardised in ``forward``) are *constants*, evaluated once for real;
* functional ops given constant weights become the layer they describe (``F.conv2d``,
  ``F.batch_norm``, ``F.linear``); arithmetic with a number or a per-channel constant becomes a
  fused element-wise step or an affine layer;
* layout nodes are matched as patterns (view to groups, transpose, view back: a shuffle;
  ``chunk``/``split`` then indexing: channel slices; ``view`` between ``(N, C)`` and
  ``(N, C, 1, 1)``).

Anything else is refused with a :class:`PartitionError` naming the node, its type and why.
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
from .capture import fetch_attr, node_label
from .ops import (
    Activation,
    AdaptiveAvgPool,
    Add,
    Affine,
    Cat,
    ChannelView,
    Conv,
    Div,
    Flatten,
    FlattenSpatial,
    GlobalPool,
    Linear,
    Mul,
    Op,
    Pad,
    Pool,
    Reorg,
    Shuffle,
    Slice,
    Sub,
    Upsample,
    resize_matrix,
)

SUPPORTED = (
    "Conv2d (any padding, also 'same' and padding computed at run time), BatchNorm2d (also "
    "F.batch_norm with a module's buffers), ReLU, ReLU6, LeakyReLU, SiLU, Hardswish, Hardsigmoid, "
    "Sigmoid, Tanh, GELU, Mish, Hardtanh/clamp, arithmetic with numbers, per-channel constants or "
    "broadcast tensors (add, sub, mul, div), MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, global "
    "mean/max, Flatten, view/reshape (flatten, (N, C) <-> (N, C, 1, 1), channel shuffle), "
    "chunk/split/narrow/slicing of channels, Upsample/interpolate, Linear, Dropout, Identity, "
    "PixelUnshuffle (reorg), ChannelShuffle, constant pad, concatenation of channels"
)

Make = Callable[[list[tuple[int, ...]], tuple[int, ...]], Op]


@dataclass
class Raw:
    """A classified fx node before folding and fusion."""

    name: str
    kind: str  # input, output, op, act, bn
    inputs: list[str]
    shape: tuple[int, ...]  # with batch
    source: str
    make: Make | None = None
    act: Activation | None = None
    bn: tuple[Tensor, Tensor] | None = None  # BatchNorm as (scale, shift)
    users: list[str] = field(default_factory=list)


_ACT_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh", nn.Mish: "mish", nn.GELU: "gelu", nn.Hardtanh: "clamp",
    nn.Softplus: "softplus",
}
_ACT_FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu_: "relu", F.relu6: "relu6",
    F.leaky_relu: "leaky_relu", F.silu: "silu", F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    torch.tanh: "tanh", F.tanh: "tanh", F.mish: "mish", F.gelu: "gelu", F.hardtanh: "clamp",
    torch.clamp: "clamp", torch.clip: "clamp", F.softplus: "softplus",
}
_ACT_METHODS = {
    "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
    "tanh_": "tanh", "clamp": "clamp", "clamp_": "clamp", "clip": "clamp", "clip_": "clamp",
    "clamp_min": "clamp", "clamp_min_": "clamp",
}
_ARITH_FUNCTIONS: dict[Callable[..., Any], str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    operator.sub: "sub", operator.isub: "sub", torch.sub: "sub",
    operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
    operator.truediv: "div", operator.itruediv: "div", torch.div: "div",
    torch.true_divide: "div",
}
_ARITH_METHODS = {"add": "add", "add_": "add", "sub": "sub", "sub_": "sub", "mul": "mul",
                  "mul_": "mul", "div": "div", "div_": "div", "true_divide": "div"}
_BROADCAST_OPS: dict[str, type[Add | Mul | Sub | Div]] = {
    "add": Add, "sub": Sub, "mul": Mul, "div": Div}
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Identity)
_IDENTITY_FUNCTIONS: tuple[Callable[..., Any], ...] = (F.dropout, F.dropout2d)
_IDENTITY_METHODS = ("contiguous", "clone", "detach", "float")
_RESHAPE_METHODS = ("view", "reshape")
_MEAN = {"mean": "avg", "amax": "max"}
_SPLIT_FUNCTIONS: dict[Callable[..., Any], str] = {
    torch.chunk: "chunk", torch.split: "split", torch.tensor_split: "tensor_split"}
_INTERPOLATE: tuple[Callable[..., Any], ...] = (F.interpolate, F.upsample)


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    """``(v, v)`` for a number, the first two entries of a sequence otherwise."""
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def batch_norm_affine(mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None,
                      eps: float) -> tuple[Tensor, Tensor]:
    """An eval-mode BatchNorm as per-channel ``(scale, shift)``: y = x * scale + shift."""
    with torch.no_grad():
        scale = weight.detach() if weight is not None else torch.ones_like(var)
        scale = scale / torch.sqrt(var + eps)
        shift = bias.detach() if bias is not None else torch.zeros_like(mean)
        return scale, shift - mean * scale


class Classifier:
    """One pass over a captured graph, producing :class:`Raw` nodes in topological order."""

    def __init__(self, gm: fx.GraphModule, values: dict[str, Any]) -> None:
        self.gm = gm
        self.values = values
        self.out: list[Raw] = []
        self.alias: dict[str, str] = {}
        self.consts: dict[str, Any] = {}
        self.dependent: set[str] = set()
        # pending layout patterns: node -> (source tensor, groups, stage)
        self.layouts: dict[str, tuple[str, int, str]] = {}
        # chunk/split results: node -> (source tensor, channel ranges)
        self.multi: dict[str, tuple[str, list[tuple[int, int]]]] = {}
        # expand/expand_as results, read as their unexpanded source by broadcasting arithmetic
        self.expanded: set[str] = set()

    # ---- helpers ------------------------------------------------------------------------
    def ref(self, a: Any) -> str:
        """The layer-graph tensor an fx argument refers to."""
        assert isinstance(a, fx.Node)
        return self.alias.get(a.name, a.name)

    def is_tensor(self, a: Any) -> bool:
        """True when ``a`` is a node computed from the input."""
        return isinstance(a, fx.Node) and a.name in self.dependent

    def const(self, a: Any) -> Any:
        """The real value of a constant argument (a number, a tensor, a constant node)."""
        if isinstance(a, fx.Node):
            return self.consts[a.name]
        if isinstance(a, list | tuple):
            return type(a)(self.const(x) for x in a)
        return a

    def shape(self, a: Any) -> tuple[int, ...]:
        """Shape (with batch) of the tensor node ``a``."""
        v = self.values[a.name]
        if not isinstance(v, Tensor):
            name, kind = node_label(self.gm, a)
            raise PartitionError(
                f"layer '{name}' ({kind}) produces {type(v).__name__}, not a tensor; it is not "
                f"supported")
        return tuple(int(s) for s in v.shape)

    def unsupported(self, n: fx.Node, why: str = "") -> PartitionError:
        """The error for node ``n``, with the reason."""
        name, kind = node_label(self.gm, n)
        extra = f" ({why})" if why else ""
        return PartitionError(
            f"layer '{name}' of type {kind} is not supported"
            f"{extra}; supported: {SUPPORTED}")

    def emit(self, n: fx.Node, kind: str, inputs: list[str], make: Make | None = None,
             act: Activation | None = None, bn: tuple[Tensor, Tensor] | None = None,
             name: str | None = None, shape: tuple[int, ...] | None = None) -> None:
        """Add a classified node (``name``/``shape`` for a helper node of a pattern)."""
        for i in inputs:
            if i in self.layouts or i in self.multi:
                raise self.unsupported(n, "reads an intermediate of a channel shuffle or a "
                                          "split as a tensor")
        label = node_label(self.gm, n)[0]
        self.out.append(Raw(name or n.name, kind, inputs, shape or self.shape(n), label, make,
                            act, bn))

    # ---- the pass -----------------------------------------------------------------------
    def run(self) -> list[Raw]:
        """Classify every node."""
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.dependent.add(n.name)
                self.out.append(Raw(n.name, "input", [], self.shape(n), n.name))
            elif n.op == "output":
                self._output(n)
            elif not any(a.name in self.dependent for a in n.all_input_nodes):
                self.consts[n.name] = self._evaluate(n)
            else:
                self.dependent.add(n.name)
                self._node(n)
        return self.out

    def _evaluate(self, n: fx.Node) -> Any:
        if n.op == "get_attr":
            return fetch_attr(self.gm, str(n.target))
        args = fx.node.map_arg(n.args, lambda a: self.consts[a.name])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: self.consts[a.name])
        try:
            with torch.no_grad():
                if n.op == "call_function":
                    return n.target(*args, **kwargs)  # type: ignore[operator]
                if n.op == "call_method":
                    return getattr(args[0], str(n.target))(*args[1:], **kwargs)
                return self.gm.get_submodule(str(n.target))(*args, **kwargs)
        except Exception as exc:
            raise self.unsupported(n, f"computing a constant failed: {exc}") from exc

    def _output(self, n: fx.Node) -> None:
        res = n.args[0]
        if isinstance(res, list | tuple) and len(res) == 1:
            res = res[0]
        if not self.is_tensor(res):
            raise PartitionError(
                f"the model returns {type(res).__name__}; exactly one output tensor computed "
                "from the input is supported; concatenate several "
                "outputs into one tensor")
        if self.ref(res) in self.layouts or self.ref(res) in self.multi:
            raise PartitionError("the model returns an intermediate of a channel shuffle or "
                                 "a split")
        self.out.append(Raw("@output", "output", [self.ref(res)], (), "output"))

    def _node(self, n: fx.Node) -> None:
        arith = ((n.op == "call_function" and n.target in _ARITH_FUNCTIONS)
                 or (n.op == "call_method" and n.target in _ARITH_METHODS))
        if not arith and any(a.name in self.expanded for a in n.all_input_nodes):
            raise self.unsupported(n, "reads an expanded tensor; expand is supported only as "
                                      "an operand of element-wise arithmetic")
        if n.op == "call_module":
            self._module(n, self.gm.get_submodule(str(n.target)))
        elif n.op == "call_function":
            self._function(n)
        elif n.op == "call_method":
            self._method(n)
        else:  # pragma: no cover - placeholders/get_attr are handled in run()
            raise self.unsupported(n)

    def _act(self, n: fx.Node, name: str, x: Any, slope: float = 0.01,
             args: tuple[float, ...] = ()) -> None:
        if name == "clamp" and args == (0.0, 6.0):
            name, args = "relu6", ()
        elif name == "clamp" and args == (0.0, float("inf")):
            name, args = "relu", ()
        self.emit(n, "act", [self.ref(x)], act=Activation(name, slope, args))

    def _identity(self, n: fx.Node, x: Any) -> None:
        self.alias[n.name] = self.ref(x)

    # ---- modules ------------------------------------------------------------------------
    def _module(self, n: fx.Node, mod: nn.Module) -> None:
        x = n.args[0] if n.args else n.kwargs.get("input")
        if not self.is_tensor(x):
            raise self.unsupported(n, "its input is not a tensor computed from the image")
        if isinstance(mod, _IDENTITY_MODULES):
            self._identity(n, x)
        elif type(mod) in _ACT_MODULES:
            name = _ACT_MODULES[type(mod)]
            if isinstance(mod, nn.Softplus) and (mod.beta != 1.0 or mod.threshold != 20.0):
                raise self.unsupported(n, "softplus with a beta or threshold other than the "
                                          "defaults")
            if isinstance(mod, nn.GELU) and mod.approximate == "tanh":
                name = "gelu_tanh"
            clamp = ((float(mod.min_val), float(mod.max_val)) if isinstance(mod, nn.Hardtanh)
                     else ())
            self._act(n, name, x, float(getattr(mod, "negative_slope", 0.01)), clamp)
        elif isinstance(mod, nn.Conv2d):
            if mod.padding_mode != "zeros":
                raise self.unsupported(n, f"padding_mode={mod.padding_mode!r}")
            b = None if mod.bias is None else mod.bias.detach()
            self._conv(n, x, mod.weight.detach(), b, mod.stride, mod.padding, mod.dilation,
                       int(mod.groups))
        elif isinstance(mod, nn.BatchNorm2d):
            if mod.running_mean is None or mod.running_var is None:
                raise self.unsupported(n, "BatchNorm without running statistics cannot be folded")
            bn = batch_norm_affine(mod.running_mean, mod.running_var, mod.weight, mod.bias,
                                   float(mod.eps))
            self.emit(n, "bn", [self.ref(x)], bn=bn)
        elif isinstance(mod, nn.MaxPool2d | nn.AvgPool2d):
            self._pool(n, x, "max" if isinstance(mod, nn.MaxPool2d) else "avg",
                       mod.kernel_size, mod.stride, mod.padding, getattr(mod, "dilation", 1),
                       mod.ceil_mode, getattr(mod, "count_include_pad", True),
                       getattr(mod, "divisor_override", None),
                       getattr(mod, "return_indices", False))
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            self._adaptive_avg(n, x)
        elif isinstance(mod, nn.AdaptiveMaxPool2d):
            self._global(n, x, "max", pair(mod.output_size) == (1, 1), True)  # type: ignore[arg-type]
        elif isinstance(mod, nn.Flatten):
            self._flatten(n, x, mod.start_dim, mod.end_dim)
        elif isinstance(mod, nn.Linear):
            b = None if mod.bias is None else mod.bias.detach()
            self._linear(n, x, mod.weight.detach(), b)
        elif isinstance(mod, nn.PixelUnshuffle):
            s = int(mod.downscale_factor)
            self.emit(n, "op", [self.ref(x)], lambda ins, o: Reorg(ins, o, stride=s))
        elif isinstance(mod, nn.ZeroPad2d | nn.ConstantPad2d):
            self._pad(n, x, mod.padding, float(getattr(mod, "value", 0.0)))
        elif isinstance(mod, nn.ChannelShuffle):
            self._shuffle(n, x, int(mod.groups))
        elif isinstance(mod, nn.Upsample):
            align = True if isinstance(mod, nn.UpsamplingBilinear2d) else mod.align_corners
            self._upsample(n, x, mod.scale_factor, mod.mode, align,
                           mod.recompute_scale_factor, False)
        else:
            raise self.unsupported(n)

    # ---- functions ----------------------------------------------------------------------
    def _function(self, n: fx.Node) -> None:
        t = n.target
        x = n.args[0] if n.args else None
        if t is F.softplus and (_arg(n, 1, "beta", 1.0) != 1.0 or _arg(n, 2, "threshold", 20.0)
                                != 20.0):
            raise self.unsupported(n, "softplus with a beta or threshold other than the defaults")
        if t in _ACT_FUNCTIONS:
            name = _ACT_FUNCTIONS[t]
            if t is F.gelu and _arg(n, 1, "approximate", "none") == "tanh":
                name = "gelu_tanh"
            slope = float(_arg(n, 1, "negative_slope", 0.01)) if t is F.leaky_relu else 0.01
            clamp: tuple[float, ...] = ()
            if t is F.hardtanh:
                clamp = (float(_arg(n, 1, "min_val", -1.0)), float(_arg(n, 2, "max_val", 1.0)))
            elif name == "clamp":
                clamp = self._clamp_args(n, 1)
            self._act(n, name, x, slope, clamp)
        elif t in _IDENTITY_FUNCTIONS:
            if _arg(n, 2, "training", True):
                raise self.unsupported(n, "dropout in training mode")
            self._identity(n, x)
        elif t in _ARITH_FUNCTIONS:
            self._arith(n, _ARITH_FUNCTIONS[t], x, _arg(n, 1, "other"))
        elif t in (torch.cat, torch.concat, torch.concatenate):
            self._cat(n, list(_arg(n, 0, "tensors")), _arg(n, 1, "dim", 0))
        elif t is torch.flatten:
            self._flatten(n, x, _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1))
        elif t in (F.max_pool2d, F.avg_pool2d):
            self._functional_pool(n, x, t is F.max_pool2d)
        elif t is F.adaptive_avg_pool2d:
            self._adaptive_avg(n, x)
        elif t is F.adaptive_max_pool2d:
            self._global(n, x, "max", pair(_arg(n, 1, "output_size")) == (1, 1), True)
        elif t in (torch.mean, torch.amax):
            self._mean(n, x, _MEAN[t.__name__], _arg(n, 1, "dim"), _arg(n, 2, "keepdim", False))
        elif t is F.pixel_unshuffle:
            s = int(_arg(n, 1, "downscale_factor"))
            self.emit(n, "op", [self.ref(x)], lambda ins, o: Reorg(ins, o, stride=s))
        elif t is F.pad:
            mode = _arg(n, 2, "mode", "constant")
            if mode != "constant":
                raise self.unsupported(n, f"pad mode {mode!r}; only constant padding")
            value = _arg(n, 3, "value", None)
            self._pad(n, x, _arg(n, 1, "pad"), 0.0 if value is None else float(value))
        elif t is F.conv2d:
            self._conv(n, x, self._weight(n, 1, "weight"), self._weight(n, 2, "bias"),
                       _arg(n, 3, "stride", 1), _arg(n, 4, "padding", 0),
                       _arg(n, 5, "dilation", 1), int(_arg(n, 6, "groups", 1)))
        elif t is F.linear:
            self._linear(n, x, self._weight(n, 1, "weight"), self._weight(n, 2, "bias"))
        elif t is F.batch_norm:
            self._functional_bn(n, x)
        elif t in _INTERPOLATE:
            self._interpolate(n, x)
        elif t in (F.channel_shuffle, torch.channel_shuffle, F.native_channel_shuffle):
            self._shuffle(n, x, int(_arg(n, 1, "groups")))
        elif t in _SPLIT_FUNCTIONS:
            self._split(n, x, _SPLIT_FUNCTIONS[t], _arg(n, 1, "split_size_or_sections",
                                                          n.kwargs.get("chunks")),
                        _arg(n, 2, "dim", 0))
        elif t is torch.narrow:
            self._narrow(n, x, _arg(n, 1, "dim"), _arg(n, 2, "start"), _arg(n, 3, "length"))
        elif t is operator.getitem:
            self._getitem(n, x, n.args[1])
        elif t is torch.transpose:
            self._transpose(n, x, [_arg(n, 1, "dim0"), _arg(n, 2, "dim1")])
        elif t is torch.permute:
            self._transpose(n, x, list(_arg(n, 1, "dims")), permute=True)
        elif t is torch.reshape:
            self._reshape(n, x)
        else:
            raise self.unsupported(n)

    # ---- methods ------------------------------------------------------------------------
    def _method(self, n: fx.Node) -> None:
        t = str(n.target)
        x = n.args[0]
        if t in _ACT_METHODS:
            clamp = self._clamp_args(n, 1) if _ACT_METHODS[t] == "clamp" else ()
            if t.startswith("clamp_min"):
                clamp = (float(_arg(n, 1, "min")), float("inf"))
            self._act(n, _ACT_METHODS[t], x, args=clamp)
        elif t in _IDENTITY_METHODS:
            self._identity(n, x)
        elif t in ("expand", "expand_as"):  # broadcasting made explicit: arithmetic only
            self._identity(n, x)
            self.expanded.add(n.name)
        elif t in _ARITH_METHODS:
            self._arith(n, _ARITH_METHODS[t], x, _arg(n, 1, "other"))
        elif t == "flatten":
            self._flatten(n, x, _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1))
        elif t in _MEAN:
            self._mean(n, x, _MEAN[t], _arg(n, 1, "dim"), _arg(n, 2, "keepdim", False))
        elif t in _RESHAPE_METHODS or t == "unflatten":
            self._reshape(n, x)
        elif t in ("transpose", "transpose_"):
            self._transpose(n, x, [_arg(n, 1, "dim0"), _arg(n, 2, "dim1")])
        elif t == "permute":
            dims = list(n.args[1:]) if len(n.args) > 2 else list(_arg(n, 1, "dims"))
            self._transpose(n, x, dims, permute=True)
        elif t in ("chunk", "split", "tensor_split"):
            self._split(n, x, t, _arg(n, 1, "split_size", n.kwargs.get("chunks")),
                        _arg(n, 2, "dim", 0))
        elif t == "narrow":
            self._narrow(n, x, _arg(n, 1, "dim"), _arg(n, 2, "start"), _arg(n, 3, "length"))
        else:
            raise self.unsupported(n)

    # ---- the layers ---------------------------------------------------------------------
    def _weight(self, n: fx.Node, i: int, name: str) -> Tensor | None:
        w = _arg(n, i, name)
        if w is None:
            return None
        if self.is_tensor(w):
            raise self.unsupported(n, f"its {name} is computed from the input, not a parameter")
        v = self.const(w)
        if not isinstance(v, Tensor):
            raise self.unsupported(n, f"its {name} is {type(v).__name__}, not a tensor")
        return v.detach()

    def _conv(self, n: fx.Node, x: Any, w: Tensor | None, b: Tensor | None, stride: Any,
              padding: Any, dilation: Any, groups: int) -> None:
        assert w is not None
        if w.dim() != 4:
            raise self.unsupported(n, f"a {w.dim() - 2}-D convolution; only 2-D")
        kernel = (int(w.shape[2]), int(w.shape[3]))
        st, dil = pair(stride), pair(dilation)
        src = self.ref(x)
        if isinstance(padding, str):
            if padding == "valid":
                pads = [(0, 0), (0, 0)]
            else:  # 'same' (stride 1): torch puts the odd pixel at the end
                pads = []
                for k, d in zip(kernel, dil, strict=True):
                    total = d * (k - 1)
                    pads.append((total // 2, total - total // 2))
        else:
            p = pair(padding)
            pads = [(p[0], p[0]), (p[1], p[1])]
        sym = (min(pads[0]), min(pads[1]))
        extra = [pads[0][0] - sym[0], pads[0][1] - sym[0], pads[1][0] - sym[1],
                 pads[1][1] - sym[1]]
        if any(extra):
            top, bottom, left, right = extra
            xs = self.shape(x)
            pshape = (xs[0], xs[1], xs[2] + top + bottom, xs[3] + left + right)
            pname = f"{n.name}_pad"
            self.out.append(Raw(pname, "op", [src], pshape, node_label(self.gm, n)[0],
                                lambda ins, o: Pad(ins, o, left=left, right=right, top=top,
                                                   bottom=bottom, value=0.0)))
            src = pname
        self.emit(n, "op", [src], lambda ins, o: Conv(
            ins, o, weight=w, bias=b, stride=st, padding=sym, dilation=dil, groups=groups))

    def _linear(self, n: fx.Node, x: Any, w: Tensor | None, b: Tensor | None) -> None:
        assert w is not None
        if len(self.shape(x)) != 2:
            raise self.unsupported(
                n, f"Linear on a {len(self.shape(x))}-D input; only (N, F) is supported")
        self.emit(n, "op", [self.ref(x)], lambda ins, o: Linear(ins, o, weight=w, bias=b))

    def _functional_bn(self, n: fx.Node, x: Any) -> None:
        mean, var = self._weight(n, 1, "running_mean"), self._weight(n, 2, "running_var")
        if _arg(n, 5, "training", False) or mean is None or var is None:
            raise self.unsupported(
                n, "batch norm with batch statistics (training mode, or no running statistics): "
                   "call model.eval() first")
        bn = batch_norm_affine(mean, var, self._weight(n, 3, "weight"),
                               self._weight(n, 4, "bias"), float(_arg(n, 7, "eps", 1e-5)))
        if len(self.shape(x)) != 4:
            raise self.unsupported(n, "batch norm of a tensor that is not (N, C, H, W)")
        self.emit(n, "bn", [self.ref(x)], bn=bn)

    def _clamp_args(self, n: fx.Node, i: int) -> tuple[float, float]:
        lo, hi = _arg(n, i, "min"), _arg(n, i + 1, "max")
        if self.is_tensor(lo) or self.is_tensor(hi) or isinstance(lo, fx.Node) or isinstance(
                hi, fx.Node):
            raise self.unsupported(n, "clamp with tensor bounds")
        return (float("-inf") if lo is None else float(lo),
                float("inf") if hi is None else float(hi))

    def _arith(self, n: fx.Node, op: str, a: Any, b: Any) -> None:
        alpha = n.kwargs.get("alpha", 1)
        if alpha != 1 or n.kwargs.get("rounding_mode") is not None:
            raise self.unsupported(n, "alpha or rounding_mode")
        if op == "mul" and self._silu(n, a, b):
            return
        if self.is_tensor(a) and self.is_tensor(b):
            sa, sb = self.shape(a), self.shape(b)
            out = self.shape(n)
            if len(sa) != len(out) or len(sb) != len(out) or sa[0] != out[0] or sb[0] != out[0]:
                raise self.unsupported(
                    n, f"{op} of tensors of shapes {sa} and {sb}: broadcasting is supported "
                       "between tensors of the same rank and batch")
            sa, sb = self._source_shape(a), self._source_shape(b)
            if op in ("add", "mul") and sa != out and sb == out:
                a, b = b, a  # the full-size operand first, so the layer can follow its pieces
            cls = _BROADCAST_OPS[op]
            self.emit(n, "op", [self.ref(a), self.ref(b)], lambda ins, o: cls(ins, o))
            return
        flipped = not self.is_tensor(a)
        x, c = (b, a) if flipped else (a, b)
        value = self.const(c)
        if isinstance(value, Tensor) and value.numel() == 1:
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            name = op
            if flipped and op == "sub":
                name = "rsub"
            elif flipped and op == "div":
                raise self.unsupported(n, "a number divided by a tensor")
            self._act(n, name, x, args=(float(value),))
            return
        if isinstance(value, Tensor):
            self._channel_constant(n, op, x, value, flipped)
            return
        raise self.unsupported(n, f"{op} with {type(value).__name__}")

    def _silu(self, n: fx.Node, a: Any, b: Any) -> bool:
        """``x * sigmoid(x)`` (how SiLU is exported to ONNX or written out) as one SiLU."""
        for x, gate in ((a, b), (b, a)):
            if not (self.is_tensor(x) and self.is_tensor(gate)) or len(gate.users) != 1:
                continue
            raw = next((r for r in reversed(self.out) if r.name == gate.name), None)
            if (raw is not None and raw.kind == "act" and raw.act is not None
                    and raw.act.name == "sigmoid" and raw.inputs == [self.ref(x)]):
                self.out.remove(raw)
                self._act(n, "silu", x)
                return True
        return False

    def _source_shape(self, a: fx.Node) -> tuple[int, ...]:
        """Shape of the layer-graph tensor ``a`` refers to (before an ``expand``)."""
        v = self.values.get(self.ref(a))
        return tuple(int(d) for d in v.shape) if isinstance(v, Tensor) else self.shape(a)

    def _channel_constant(self, n: fx.Node, op: str, x: Any, value: Tensor,
                          flipped: bool) -> None:
        shape = self.shape(x)
        c = shape[1]
        v = value.detach()
        while v.dim() > len(shape) - 1:
            if v.shape[0] != 1:
                break
            v = v[0]
        per_channel = (v.dim() == len(shape) - 1 and v.shape[0] == c
                       and all(s == 1 for s in v.shape[1:]))
        if not per_channel or self.shape(n) != shape:
            raise self.unsupported(
                n, f"{op} with a constant of shape {tuple(value.shape)}: only numbers and "
                   "per-channel constants")
        v = v.reshape(c).to(torch.float32)
        one, zero = torch.ones(c), torch.zeros(c)
        scale, shift = {
            "add": (one, v), "sub": ((-one, v) if flipped else (one, -v)),
            "mul": (v, zero), "div": (1.0 / v, zero)}[op]
        if flipped and op == "div":
            raise self.unsupported(n, "a constant divided by a tensor")
        self.emit(n, "op", [self.ref(x)],
                  lambda ins, o: Affine(ins, o, scale=scale, shift=shift))

    def _cat(self, n: fx.Node, tensors: list[Any], dim: Any) -> None:
        out = self.shape(n)
        d = int(dim) % len(out)
        if d == 0 or not all(self.is_tensor(t) for t in tensors):
            raise self.unsupported(
                n, f"concatenation along dim {dim}; only along a dimension after the batch, of "
                   "tensors computed from the input")
        self.emit(n, "op", [self.ref(t) for t in tensors],
                  lambda ins, o: Cat(ins, o, axis=d - 1))

    def _pool(self, n: fx.Node, x: Any, mode: str, kernel: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, count_include_pad: bool,
              divisor_override: int | None, return_indices: bool) -> None:
        if return_indices:
            raise self.unsupported(n, "return_indices=True")
        k = pair(kernel)
        s = pair(stride) if stride not in (None, [], ()) else k
        p, d = pair(padding), pair(dilation)
        self.emit(n, "op", [self.ref(x)], lambda ins, o: Pool(
            ins, o, mode=mode, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode,
            count_include_pad=count_include_pad, divisor_override=divisor_override))

    def _functional_pool(self, n: fx.Node, x: Any, is_max: bool) -> None:
        k, s, p = _arg(n, 1, "kernel_size"), _arg(n, 2, "stride"), _arg(n, 3, "padding", 0)
        if is_max:
            self._pool(n, x, "max", k, s, p, _arg(n, 4, "dilation", 1),
                       bool(_arg(n, 5, "ceil_mode", False)), True, None,
                       bool(_arg(n, 6, "return_indices", False)))
        else:
            self._pool(n, x, "avg", k, s, p, 1, bool(_arg(n, 4, "ceil_mode", False)),
                       bool(_arg(n, 5, "count_include_pad", True)),
                       _arg(n, 6, "divisor_override", None), False)

    def _global(self, n: fx.Node, x: Any, mode: str, ok: bool, keepdim: bool) -> None:
        if not ok or len(self.shape(x)) != 4:
            raise self.unsupported(n, "adaptive max pooling to a size other than 1x1")
        self.emit(n, "op", [self.ref(x)], lambda ins, o: GlobalPool(ins, o, mode=mode))

    def _adaptive_avg(self, n: fx.Node, x: Any) -> None:
        out = self.shape(n)
        if len(out) == 4 and out[2:] == (1, 1):  # a global mean: partial sums under spatial
            self.emit(n, "op", [self.ref(x)], lambda ins, o: GlobalPool(ins, o, mode="avg"))
        else:
            self.emit(n, "op", [self.ref(x)], lambda ins, o: AdaptiveAvgPool(ins, o))

    def _mean(self, n: fx.Node, x: Any, mode: str, dim: Any, keepdim: Any) -> None:
        rank = len(self.shape(x))
        dims = {int(d) % rank for d in (dim if isinstance(dim, list | tuple) else [dim])} \
            if dim is not None else set(range(rank))
        if rank != 4 or dims != {2, 3}:
            raise self.unsupported(n, f"{mode} over dims {dim}; only over rows and columns "
                                      "(2, 3) of an (N, C, H, W) tensor")
        self._global(n, x, mode, True, bool(keepdim))

    def _flatten(self, n: fx.Node, x: Any, start: Any, end: Any) -> None:
        in_shape = self.shape(x)
        start, end = int(start) % len(in_shape), int(end) % len(in_shape)
        if isinstance(x, fx.Node) and self.ref(x) in self.layouts:
            self._reshape(n, x)
            return
        if (start, end, len(in_shape)) == (2, 3, 4):
            self.emit(n, "op", [self.ref(x)], lambda ins, o: FlattenSpatial(ins, o))
            return
        if start != 1 or end != len(in_shape) - 1:
            raise self.unsupported(n, f"flatten(start_dim={start}, end_dim={end}); only "
                                      "flatten from dim 1, or of rows and columns")
        if len(in_shape) == 2:
            self._identity(n, x)
        else:
            self.emit(n, "op", [self.ref(x)], lambda ins, o: Flatten(ins, o))

    def _reshape(self, n: fx.Node, x: Any) -> None:
        src, out = self.shape(x), self.shape(n)
        layout = self.layouts.pop(self.ref(x), None)
        if layout is not None:
            tensor, groups, stage = layout
            if stage == "transposed" and len(out) == 4 and out[1] == src[1] * src[2]:
                self.emit(n, "op", [tensor], lambda ins, o: Shuffle(ins, o, groups=groups))
                return
            raise self.unsupported(n, f"reshape from {src} to {out} inside a channel shuffle")
        if out == src:
            self._identity(n, x)
        elif len(src) == 4 and len(out) == 5 and out[:1] == src[:1] and out[3:] == src[2:] \
                and out[1] * out[2] == src[1]:
            self.layouts[n.name] = (self.ref(x), out[1], "split")
        elif len(src) >= 3 and len(out) == 2 and out[1] == src[1] * _prod(src[2:]):
            self._flatten(n, x, 1, -1)
        elif len(src) == 4 and len(out) == 3 and out[:2] == src[:2]:
            self.emit(n, "op", [self.ref(x)], lambda ins, o: FlattenSpatial(ins, o))
        elif out[:2] == src[:2] and _prod(out[2:]) == 1 and _prod(src[2:]) == 1:
            self.emit(n, "op", [self.ref(x)], lambda ins, o: ChannelView(ins, o))
        else:
            raise self.unsupported(n, f"reshape from {src} to {out}")

    def _transpose(self, n: fx.Node, x: Any, dims: list[Any], permute: bool = False) -> None:
        layout = self.layouts.pop(self.ref(x), None) if isinstance(x, fx.Node) else None
        swaps_groups = (list(map(int, dims)) == [0, 2, 1, 3, 4] if permute
                        else sorted(int(d) % 5 for d in dims) == [1, 2])
        if layout is not None and layout[2] == "split" and swaps_groups:
            self.layouts[n.name] = (layout[0], layout[1], "transposed")
            return
        raise self.unsupported(n, f"{'permute' if permute else 'transpose'} of dims {dims}; only "
                                  "as part of a channel shuffle (view, transpose(1, 2), view)")

    def _shuffle(self, n: fx.Node, x: Any, groups: int) -> None:
        self.emit(n, "op", [self.ref(x)], lambda ins, o: Shuffle(ins, o, groups=groups))

    def _split(self, n: fx.Node, x: Any, how: str, size: Any, dim: Any) -> None:
        shape = self.shape(x)
        if int(dim) % len(shape) != 1:
            raise self.unsupported(n, f"{how} along dim {dim}; only along channels (dim 1)")
        value = self.values[n.name]
        ranges: list[tuple[int, int]] = []
        start = 0
        for part in value:
            ranges.append((start, start + int(part.shape[1])))
            start += int(part.shape[1])
        self.multi[n.name] = (self.ref(x), ranges)

    def _narrow(self, n: fx.Node, x: Any, dim: Any, start: Any, length: Any) -> None:
        c = self.shape(x)[1]
        if int(dim) % len(self.shape(x)) != 1:
            raise self.unsupported(n, f"narrow along dim {dim}; only along channels (dim 1)")
        a = int(start) % c if int(start) < 0 else int(start)
        self._slice(n, self.ref(x), a, a + int(length))

    def _slice(self, n: fx.Node, src: str, a: int, b: int) -> None:
        self.emit(n, "op", [src], lambda ins, o: Slice(ins, o, start=a, stop=b))

    def _getitem(self, n: fx.Node, x: Any, index: Any) -> None:
        if isinstance(x, fx.Node) and x.name in self.multi:
            src, ranges = self.multi[x.name]
            a, b = ranges[int(index)]
            self._slice(n, src, a, b)
            return
        shape = self.shape(x)
        idx = index if isinstance(index, tuple) else (index,)
        if idx and idx[-1] is Ellipsis:
            idx = idx[:-1]
        full = slice(None)
        if len(idx) >= 2 and idx[0] == full and isinstance(idx[1], slice) and all(
                i == full for i in idx[2:]) and idx[1].step in (None, 1):
            a, b, _ = idx[1].indices(shape[1])
            self._slice(n, self.ref(x), a, max(a, b))
            return
        if all(i == full for i in idx):
            self._identity(n, x)
            return
        raise self.unsupported(n, f"indexing with {index!r}; only a slice of channels "
                                  "x[:, a:b]")

    def _pad(self, n: fx.Node, x: Any, pad: Any, value: float) -> None:
        p = [int(v) for v in (pad if isinstance(pad, Sequence) else [pad] * 4)]
        while len(p) > 4 and p[-2:] == [0, 0]:  # no padding of channels or batch (ONNX writes it)
            p = p[:-2]
        if len(p) == 2:
            p += [0, 0]
        if len(p) != 4 or any(v < 0 for v in p):
            raise self.unsupported(
                n, f"padding {tuple(p)}: only non-negative padding of H and W is supported")
        left, right, top, bottom = p
        self.emit(n, "op", [self.ref(x)], lambda ins, o: Pad(
            ins, o, left=left, right=right, top=top, bottom=bottom, value=value))

    def _interpolate(self, n: fx.Node, x: Any) -> None:
        scale = _arg(n, 2, "scale_factor")
        self._upsample(n, x, scale, _arg(n, 3, "mode", "nearest"), _arg(n, 4, "align_corners"),
                       _arg(n, 5, "recompute_scale_factor"), bool(_arg(n, 6, "antialias", False)))

    def _upsample(self, n: fx.Node, x: Any, scale: Any, mode: str, align: bool | None,
                  recompute: bool | None, antialias: bool) -> None:
        src, out = self.shape(x), self.shape(n)
        if len(src) != 4 or mode not in ("nearest", "nearest-exact", "bilinear", "bicubic",
                                          "area"):
            raise self.unsupported(n, f"{mode!r} resizing of a {len(src)}-D tensor; only 2-D "
                                      "nearest, bilinear, bicubic and area")
        scales: list[float | None] = [None, None]
        if scale is not None and not recompute:
            s = scale if isinstance(scale, Sequence) else (scale, scale)
            scales = [float(s[0]), float(s[1])]
        try:
            rows = resize_matrix(src[2], out[2], scales[0], mode, align, antialias)
            cols = resize_matrix(src[3], out[3], scales[1], mode, align, antialias)
        except Exception as exc:  # a mode/option torch refuses on a probe
            raise self.unsupported(n, f"resizing with mode {mode!r}: {exc}") from exc
        self.emit(n, "op", [self.ref(x)],
                  lambda ins, o: Upsample(ins, o, rows=rows, cols=cols, mode=mode))


def _prod(xs: Sequence[int]) -> int:
    p = 1
    for v in xs:
        p *= v
    return p


def _arg(n: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if name in n.kwargs:
        return n.kwargs[name]
    return n.args[i] if len(n.args) > i else default
