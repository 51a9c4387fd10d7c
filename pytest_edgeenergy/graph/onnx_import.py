"""ONNX models: an ONNX file read as an ``nn.Module`` whose forward runs the ONNX graph with torch
operations, so the one graph capture of :mod:`.build` turns it into a layer graph.

Why not a converter package: the maintained ones on PyPI either lag the current ONNX opsets or
produce modules of their own classes (one per ONNX op) that graph capture would have to learn
as well. Here every ONNX node becomes the same torch call model code would make
(``F.conv2d`` with the file's weights, ``F.batch_norm`` with its statistics, ``x.reshape``,
``F.interpolate``, ...), and everything the capture already knows applies: weights and shape
arithmetic (``Shape``, ``Gather``, ``Slice`` of shapes, ``Concat`` of shapes) are constants,
evaluated once; ``Reshape``-``Transpose``-``Reshape`` is a channel shuffle; ``Slice`` of channels
is a slice. The module is also the reference the partitioned run is checked against.

Only the ``onnx`` package is needed (the optional extra ``pytest-edgeenergy[onnx]``), to read
and check the file. An op this module does not know is refused when the file is loaded, naming
the node, its op type and the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ..errors import PartitionError

Value = Any  # a tensor, or None for an omitted optional input
OpFn = Callable[[list[Value], dict[str, Any]], Value]


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise PartitionError(
            "reading ONNX models needs the 'onnx' package: pip install 'pytest-edgeenergy[onnx]'"
        ) from None
    return onnx


def _ints(v: Any) -> list[int]:
    return [int(i) for i in (v.tolist() if isinstance(v, Tensor) else v)]


def _pads_2d(pads: Sequence[int]) -> tuple[int, int, int, int]:
    """ONNX pads [top, left, bottom, right] as F.pad's (left, right, top, bottom)."""
    t, left, b, r = [*pads, 0, 0, 0, 0][:4]
    return (left, r, t, b)


def _same_pads(x: Tensor, kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int], upper: bool) -> tuple[int, int, int, int]:
    """auto_pad SAME_UPPER / SAME_LOWER padding for the input's size (F.pad order)."""
    out: list[int] = []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations, strict=True):
        total = max((-(-int(size) // s) - 1) * s + (k - 1) * d + 1 - int(size), 0)
        small, big = total // 2, total - total // 2
        out += [small, big] if upper else [big, small]
    return (out[2], out[3], out[0], out[1])


def _window_padding(x: Tensor, a: dict[str, Any], kernel: Sequence[int]) -> tuple[
        Tensor, tuple[int, int], tuple[int, int, int, int]]:
    """(input, symmetric padding for the kernel, leftover F.pad amounts)."""
    strides = a.get("strides", [1, 1])
    dilations = a.get("dilations", [1, 1])
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(x, kernel, strides, dilations, auto == "SAME_UPPER")
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    else:
        pads = _pads_2d(a.get("pads", [0, 0, 0, 0]))
    left, right, top, bottom = pads
    sym = (min(top, bottom), min(left, right))
    extra = (left - sym[1], right - sym[1], top - sym[0], bottom - sym[0])
    return x, sym, extra


def _conv(i: list[Value], a: dict[str, Any]) -> Value:
    x, w = i[0], i[1]
    b = i[2] if len(i) > 2 else None
    kernel = a.get("kernel_shape", list(w.shape[2:]))
    x, sym, extra = _window_padding(x, a, kernel)
    if any(extra):
        x = F.pad(x, list(extra))
    return F.conv2d(x, w, b, a.get("strides", [1, 1]), sym, a.get("dilations", [1, 1]),
                    int(a.get("group", 1)))


def _pool(mode: str) -> OpFn:
    def run(i: list[Value], a: dict[str, Any]) -> Value:
        x = i[0]
        kernel = a["kernel_shape"]
        ceil = bool(a.get("ceil_mode", 0))
        x, sym, extra = _window_padding(x, a, kernel)
        if mode == "max":
            if any(extra):
                x = F.pad(x, list(extra), value=-float("inf"))
            return F.max_pool2d(x, kernel, a.get("strides", [1, 1]), sym,
                                a.get("dilations", [1, 1]), ceil)
        count = bool(a.get("count_include_pad", 0))
        if any(extra):
            if not count:
                raise ValueError("asymmetric padding of an average pool that does not count "
                                 "the padding")
            x = F.pad(x, list(extra))
        return F.avg_pool2d(x, kernel, a.get("strides", [1, 1]), sym, ceil, count)
    return run


def _batch_norm(i: list[Value], a: dict[str, Any]) -> Value:
    x, scale, bias, mean, var = i[:5]
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, float(a.get("epsilon", 1e-5)))


def _clip(i: list[Value], a: dict[str, Any]) -> Value:
    lo = i[1] if len(i) > 1 and i[1] is not None else a.get("min")
    hi = i[2] if len(i) > 2 and i[2] is not None else a.get("max")
    lo = float(lo) if lo is not None else None
    hi = float(hi) if hi is not None else None
    return torch.clamp(i[0], lo, hi)


def _hard_sigmoid(i: list[Value], a: dict[str, Any]) -> Value:
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return F.hardsigmoid(i[0])
    return torch.clamp(i[0] * alpha + beta, 0.0, 1.0)


def _gemm(i: list[Value], a: dict[str, Any]) -> Value:
    x, w = i[0], i[1]
    b = i[2] if len(i) > 2 else None
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise ValueError("Gemm with transA, alpha or beta other than the defaults")
    if not a.get("transB", 0):
        w = w.t()
    return F.linear(x, w, b)


def _matmul(i: list[Value], a: dict[str, Any]) -> Value:
    return F.linear(i[0], i[1].t())


def _reshape(i: list[Value], a: dict[str, Any]) -> Value:
    x, shape = i[0], _ints(i[1])
    if not a.get("allowzero", 0):
        shape = [int(x.shape[k]) if s == 0 else s for k, s in enumerate(shape)]
    return x.reshape(shape)


def _flatten(i: list[Value], a: dict[str, Any]) -> Value:
    axis = int(a.get("axis", 1))
    x = i[0]
    if axis == 1:
        return torch.flatten(x, 1)
    return x.reshape(int(torch.tensor(x.shape[:axis]).prod()), -1)


def _transpose(i: list[Value], a: dict[str, Any]) -> Value:
    perm = a.get("perm") or list(reversed(range(i[0].dim())))
    return i[0].permute(*perm)


def _concat(i: list[Value], a: dict[str, Any]) -> Value:
    return torch.cat([v for v in i if v is not None], int(a["axis"]))


def _split(i: list[Value], a: dict[str, Any]) -> Value:
    x = i[0]
    axis = int(a.get("axis", 0))
    sizes = (_ints(i[1]) if len(i) > 1 and i[1] is not None else a.get("split"))
    if sizes is None:
        parts = int(a.get("num_outputs", 2))
        return torch.chunk(x, parts, axis)
    return torch.split(x, list(sizes), axis)


def _slice(i: list[Value], a: dict[str, Any]) -> Value:
    x = i[0]
    starts, ends = _ints(i[1]), _ints(i[2])
    axes = _ints(i[3]) if len(i) > 3 and i[3] is not None else list(range(len(starts)))
    steps = _ints(i[4]) if len(i) > 4 and i[4] is not None else [1] * len(starts)
    index: list[slice] = [slice(None)] * x.dim()
    big = 2**62
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[ax % x.dim()] = slice(s if abs(s) < big else None, e if abs(e) < big else None, st)
    if any(sl.step is not None and sl.step < 0 for sl in index):
        if not isinstance(x, Tensor):  # a reversal of a computed tensor (not of a shape)
            raise ValueError("a slice with a negative step of a tensor computed from the input")
        return torch.from_numpy(x.numpy()[tuple(index)].copy())  # shape arithmetic, reversed
    return x[tuple(index)]


def _resize(i: list[Value], a: dict[str, Any]) -> Value:
    x = i[0]
    scales = i[2] if len(i) > 2 and i[2] is not None and i[2].numel() else None
    sizes = i[3] if len(i) > 3 and i[3] is not None and i[3].numel() else None
    mode = a.get("mode", "nearest")
    coord = a.get("coordinate_transformation_mode", "half_pixel")
    kw: dict[str, Any] = {}
    if mode == "nearest":
        if coord != "asymmetric" or a.get("nearest_mode", "round_prefer_floor") != "floor":
            if not (coord == "half_pixel" and a.get("nearest_mode") == "round_prefer_ceil"):
                raise ValueError(f"nearest resizing with {coord} coordinates and nearest_mode "
                                 f"{a.get('nearest_mode')!r}")
            kw["mode"] = "nearest-exact"
        else:
            kw["mode"] = "nearest"
    elif mode in ("linear", "cubic"):
        if mode == "cubic" and abs(float(a.get("cubic_coeff_a", -0.75)) + 0.75) > 1e-7:
            raise ValueError("cubic resizing with a coefficient other than -0.75")
        kw["mode"] = "bilinear" if mode == "linear" else "bicubic"
        if coord == "align_corners":
            kw["align_corners"] = True
        elif coord in ("half_pixel", "pytorch_half_pixel"):
            kw["align_corners"] = False
        else:
            raise ValueError(f"{mode} resizing with {coord} coordinates")
    else:
        raise ValueError(f"resize mode {mode!r}")
    if sizes is not None:
        return F.interpolate(x, size=_ints(sizes)[2:], **kw)
    if scales is None:
        raise ValueError("Resize with neither scales nor sizes")
    sc = [float(s) for s in scales.tolist()[2:]]
    return F.interpolate(x, scale_factor=sc, **kw)


def _pad(i: list[Value], a: dict[str, Any]) -> Value:
    x = i[0]
    pads = _ints(i[1]) if len(i) > 1 else list(a["pads"])
    value = float(i[2]) if len(i) > 2 and i[2] is not None and i[2].numel() else float(
        a.get("value", 0.0))
    if a.get("mode", "constant") != "constant":
        raise ValueError(f"pad mode {a.get('mode')!r}")
    n = len(pads) // 2
    amounts: list[int] = []
    for d in reversed(range(n)):
        amounts += [pads[d], pads[d + n]]
    return F.pad(x, amounts, value=value)


def _reduce_mean(i: list[Value], a: dict[str, Any]) -> Value:
    axes = a.get("axes") or (_ints(i[1]) if len(i) > 1 and i[1] is not None else None)
    keep = bool(a.get("keepdims", 1))
    if axes is None:
        return i[0].mean()
    return i[0].mean(tuple(axes), keepdim=keep)


def _gather(i: list[Value], a: dict[str, Any]) -> Value:
    data, idx = i[0], i[1]
    axis = int(a.get("axis", 0))
    if idx.dim() == 0:
        return data.select(axis, int(idx))
    return data.index_select(axis, idx.long().flatten()).reshape(
        *data.shape[:axis], *idx.shape, *data.shape[axis + 1:])


def _unsqueeze(i: list[Value], a: dict[str, Any]) -> Value:
    axes = a.get("axes") or _ints(i[1])
    x = i[0]
    for ax in sorted(int(v) % (x.dim() + len(axes)) for v in axes):
        x = x.unsqueeze(ax)
    return x


def _squeeze(i: list[Value], a: dict[str, Any]) -> Value:
    axes = a.get("axes") or (_ints(i[1]) if len(i) > 1 and i[1] is not None else None)
    x = i[0]
    if axes is None:
        return x.squeeze()
    for ax in sorted((int(v) % x.dim() for v in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def _constant_of_shape(i: list[Value], a: dict[str, Any]) -> Value:
    value = a.get("value")
    fill = value if isinstance(value, Tensor) else torch.zeros(1)
    return torch.full(_ints(i[0]), float(fill.flatten()[0]), dtype=fill.dtype)


_CAST = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}


def _cast(i: list[Value], a: dict[str, Any]) -> Value:
    dtype = _CAST.get(int(a["to"]))
    if dtype is None:
        raise ValueError(f"cast to ONNX type {a['to']}")
    if dtype == torch.float32 and isinstance(i[0], Tensor) and i[0].dtype == torch.float32:
        return i[0]
    return i[0].to(dtype)


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    """The NumPy broadcast of two shapes (ONNX Expand)."""
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    return [max(int(x), int(y)) for x, y in zip(a, b, strict=True)]


def _binary(fn: Callable[[Any, Any], Any]) -> OpFn:
    return lambda i, a: fn(i[0], i[1])


def _unary(fn: Callable[[Any], Any]) -> OpFn:
    return lambda i, a: fn(i[0])


#: ONNX op type -> the torch calls it becomes.
OPS: dict[str, OpFn] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "Relu": _unary(F.relu),
    "LeakyRelu": lambda i, a: F.leaky_relu(i[0], float(a.get("alpha", 0.01))),
    "Clip": _clip,
    "Sigmoid": _unary(torch.sigmoid),
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _unary(F.hardswish),
    "Tanh": _unary(torch.tanh),
    "Mish": _unary(F.mish),
    "Gelu": lambda i, a: F.gelu(i[0], approximate=str(a.get("approximate", "none"))),
    "Erf": _unary(torch.erf),
    "Softplus": _unary(F.softplus),
    "Expand": lambda i, a: i[0].expand(_broadcast(list(i[0].shape), _ints(i[1]))),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda i, a: i[0].mean((2, 3), keepdim=True),
    "GlobalMaxPool": lambda i, a: i[0].amax((2, 3), keepdim=True),
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Resize": _resize,
    "Upsample": lambda i, a: _resize([i[0], None, i[1]], {
        "mode": a.get("mode", "nearest"), "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor"}),
    "Pad": _pad,
    "Identity": lambda i, a: i[0],
    "Dropout": lambda i, a: i[0],
    "Shape": lambda i, a: torch.tensor(list(i[0].shape), dtype=torch.int64)[
        a.get("start", 0):a.get("end")],
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "ConstantOfShape": _constant_of_shape,
    "Cast": _cast,
    "Floor": _unary(torch.floor),
    "Ceil": _unary(torch.ceil),
}


class OnnxModel(nn.Module):
    """An ONNX graph run node by node with torch operations (eval mode, float32).

    ``input_shape`` is the file's declared input shape (None where a dimension is symbolic).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        onnx = _require_onnx()
        self.path = str(path)
        try:
            proto = onnx.load(self.path)
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise PartitionError(f"ONNX model {self.path} cannot be read: "
                                 f"{type(exc).__name__}: {exc}") from exc
        g = proto.graph
        numpy_helper = onnx.numpy_helper
        init_names = {t.name for t in g.initializer}
        self._names: dict[str, str] = {}
        for k, t in enumerate(g.initializer):
            arr = numpy_helper.to_array(t).copy()
            tensor = torch.from_numpy(arr)
            if tensor.is_floating_point():
                tensor = tensor.to(torch.float32)
            self.register_buffer(f"c{k}", tensor)
            self._names[t.name] = f"c{k}"
        inputs = [v for v in g.input if v.name not in init_names]
        if len(inputs) != 1 or len(g.output) != 1:
            raise PartitionError(
                f"ONNX model {self.path} has {len(inputs)} inputs and {len(g.output)} outputs; "
                "exactly one image input and one output are supported")
        self.input_name = inputs[0].name
        self.output_name = g.output[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        self.input_shape: tuple[int | None, ...] = tuple(
            int(d.dim_value) if d.HasField("dim_value") else None for d in dims)
        self._nodes: list[tuple[str, str, list[str], list[str], dict[str, Any]]] = []
        for k, node in enumerate(g.node):
            name = node.name or f"{node.op_type}_{k}"
            if node.op_type not in OPS and node.op_type != "Constant":
                raise PartitionError(
                    f"ONNX node '{name}' of op type {node.op_type} in {self.path} is not "
                    f"supported; supported ONNX ops: Constant, {', '.join(sorted(OPS))}")
            attrs = {a.name: _attribute(onnx, a) for a in node.attribute}
            self._nodes.append((name, node.op_type, list(node.input), list(node.output), attrs))
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Run the ONNX graph on ``x``."""
        env: dict[str, Value] = {self.input_name: x}
        for onnx_name, buffer in self._names.items():
            env[onnx_name] = getattr(self, buffer)
        for name, op, ins, outs, attrs in self._nodes:
            if op == "Constant":
                env[outs[0]] = _constant(attrs)
                continue
            args = [env[i] if i else None for i in ins]
            try:
                result = OPS[op](args, attrs)
            except ValueError as exc:
                raise PartitionError(f"ONNX node '{name}' of op type {op} in {self.path} is not "
                                     f"supported: {exc}") from exc
            if isinstance(result, tuple | list):
                for o, r in zip(outs, result, strict=False):
                    env[o] = r
            else:
                env[outs[0]] = result
        out: Tensor = env[self.output_name]
        return out


def _constant(attrs: dict[str, Any]) -> Tensor:
    for key in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        if key in attrs:
            v = attrs[key]
            return v if isinstance(v, Tensor) else torch.tensor(v)
    raise PartitionError(f"ONNX Constant with attributes {sorted(attrs)} is not supported")


def _attribute(onnx: Any, a: Any) -> Any:
    value = onnx.helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "dims") and hasattr(value, "data_type"):  # a TensorProto
        t = torch.from_numpy(onnx.numpy_helper.to_array(value).copy())
        return t.to(torch.float32) if t.is_floating_point() else t
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def is_onnx_path(model: object) -> bool:
    """True when ``model`` is a path (str or PathLike) to an ``.onnx`` file."""
    return isinstance(model, str | os.PathLike) and Path(model).suffix.lower() == ".onnx"


def load_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """Read the ONNX model at ``path`` as an :class:`OnnxModel`."""
    if not Path(path).is_file():
        raise PartitionError(f"ONNX model {path} does not exist")
    return OnnxModel(path)


def load_model_file(model: str | os.PathLike[str]) -> nn.Module:
    """The model stored at a path: an ``.onnx`` file (other formats are refused)."""
    if not is_onnx_path(model):
        raise PartitionError(f"model {model!r} is neither an nn.Module nor the path of an .onnx "
                             "file")
    return load_onnx(model)
