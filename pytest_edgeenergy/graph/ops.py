"""The operations a layer graph is made of, each with its region arithmetic and its kernel.

Every op answers three questions the planner and the backends need:

* ``input_boxes(out, w)``: which (ideal, possibly out-of-bounds) region of each input is
  needed to produce the region ``out`` of the output. Out-of-bounds parts are padding and are
  filled with ``fill(i)``; this is how halos at a band's border get the model's own padding.
* ``run(xs, out, w, pad)``: compute exactly ``out`` from inputs holding exactly those regions
  (less the symmetric padding ``pad`` the kernel adds itself), with only the weight slice
  ``w``. Returns the tensor, the MACs it really performed (counted from the tensors it used)
  and the weight tensors it read.
* ``macs(out, w)`` and ``weight_bytes(w)``: the same counts from box arithmetic, for plans.

Ops that carry weights (conv, linear, affine) hold real tensors; planning only reads shapes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from .box import Box, Range
from .convkernel import conv2d

FP32_BYTES = 4
NEG_INF = float("-inf")
Pad2 = tuple[int, int]  # symmetric (rows, columns) padding a kernel applies itself


@dataclass(frozen=True, slots=True)
class Activation:
    """An element-wise function fused after a layer (applied after any reduction).

    Non-linearities (relu, relu6, leaky_relu, silu, hardswish, hardsigmoid, sigmoid, tanh, gelu,
    gelu_tanh, mish, softplus, clamp) and arithmetic with a constant (``add``, ``sub``,
    ``rsub``: value minus x, ``mul``, ``div``), as model code writes ``x * F.relu6(x + 3) / 6``.
    """

    name: str
    slope: float = 0.01  # leaky_relu only
    args: tuple[float, ...] = ()  # clamp: (min, max); arithmetic: (value,)

    def apply(self, x: Tensor) -> Tensor:
        """Apply in place where safe and return the result."""
        fn = _ACTIVATIONS.get(self.name)
        if fn is None:
            raise ValueError(f"unknown activation {self.name!r}")
        return fn(self, x)

    def __str__(self) -> str:
        if self.name == "leaky_relu":
            return f"leaky_relu({self.slope})"
        if self.args:
            return f"{self.name}({', '.join(f'{a:g}' for a in self.args)})"
        return self.name


_ACTIVATIONS: dict[str, Callable[[Activation, Tensor], Tensor]] = {
    "relu": lambda a, x: F.relu(x, inplace=True),
    "relu6": lambda a, x: F.hardtanh(x, 0.0, 6.0, inplace=True),
    "leaky_relu": lambda a, x: F.leaky_relu(x, a.slope, inplace=True),
    "silu": lambda a, x: F.silu(x, inplace=True),
    "hardswish": lambda a, x: F.hardswish(x, inplace=True),
    "hardsigmoid": lambda a, x: F.hardsigmoid(x, inplace=True),
    "sigmoid": lambda a, x: torch.sigmoid_(x),
    "tanh": lambda a, x: torch.tanh_(x),
    "gelu": lambda a, x: F.gelu(x),
    "gelu_tanh": lambda a, x: F.gelu(x, approximate="tanh"),
    "mish": lambda a, x: F.mish(x, inplace=True),
    "softplus": lambda a, x: F.softplus(x),
    "clamp": lambda a, x: x.clamp_(a.args[0], a.args[1]),
    "add": lambda a, x: x.add_(a.args[0]),
    "sub": lambda a, x: x.sub_(a.args[0]),
    "rsub": lambda a, x: x.neg_().add_(a.args[0]),
    "mul": lambda a, x: x.mul_(a.args[0]),
    "div": lambda a, x: x.div_(a.args[0]),
}
#: The names :class:`Activation` knows.
ACTIVATION_NAMES = frozenset(_ACTIVATIONS)


@dataclass(frozen=True, slots=True)
class WeightSlice:
    """The part of a layer's parameters one task uses.

    ``out`` is the range of output channels (features); ``inp`` the range of input channels
    (features) for an input-channel partial sum, ``None`` for all of them. ``weights`` and
    ``bias`` say which tensors the task reads: a partial sum reads weights but no bias, the
    reduction that completes it reads only the bias.
    """

    out: Range
    inp: Range | None = None
    weights: bool = True
    bias: bool = True

    def key(self) -> tuple[object, ...]:
        """Identity of the slice, for counting each slice's bytes once per device."""
        return (self.out, self.inp, self.weights, self.bias)

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"out": list(self.out), "inp": None if self.inp is None else list(self.inp),
                "weights": self.weights, "bias": self.bias}

    @staticmethod
    def from_dict(d: dict[str, object]) -> WeightSlice:
        """Inverse of :meth:`to_dict`."""
        out = d["out"]
        inp = d["inp"]
        assert isinstance(out, list)
        return WeightSlice(
            out=(int(out[0]), int(out[1])),
            inp=None if inp is None else (int(inp[0]), int(inp[1])),  # type: ignore[index]
            weights=bool(d["weights"]),
            bias=bool(d["bias"]),
        )


@dataclass(slots=True)
class RunResult:
    """What one kernel call really did."""

    out: Tensor
    macs: int = 0
    weights: list[Tensor] = field(default_factory=list)


def _window(out: Range, k: int, s: int, p: int, d: int) -> Range:
    """Ideal input range of a sliding window (kernel k, stride s, pad p, dilation d)."""
    a, b = out
    if b <= a:
        return (0, 0)
    return (a * s - p, (b - 1) * s - p + d * (k - 1) + 1)


def _window_box(out: Box, kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int]) -> Box:
    """Ideal input region of a 2-D sliding window (conv, pool) for the output region ``out``:
    the same channels, the rows and columns the windows over ``out`` read."""
    c, h, wd = out.ranges
    return Box((c, _window(h, kernel[0], stride[0], padding[0], dilation[0]),
                _window(wd, kernel[1], stride[1], padding[1], dilation[1])))


def _first(xs: Sequence[Tensor | None]) -> Tensor:
    """The first input of a kernel call (always given: every op's first input is needed)."""
    x = xs[0]
    assert x is not None
    return x


def _pad_amounts(ideal: Box, clipped: Box) -> list[int]:
    """F.pad amounts (last dim first) that grow ``clipped`` back to ``ideal``."""
    amounts: list[int] = []
    for (ia, ib), (ca, cb) in reversed(list(zip(ideal.ranges, clipped.ranges, strict=True))):
        amounts += [ca - ia, ib - cb]
    return amounts


def pad_amounts(ideal: Box, clipped: Box, native: bool = False) -> tuple[list[int] | None, Pad2]:
    """The F.pad amounts that grow a tensor holding ``clipped`` into one holding ``ideal``
    (None: no padding), and the symmetric (rows, columns) part left to the kernel.

    With ``native``, the symmetric part of the padding of the last two dimensions is left for
    the kernel (a conv's zeros, a max pool's -inf) instead of being copied in.
    """
    if ideal == clipped:
        return None, (0, 0)
    amounts = _pad_amounts(ideal, clipped)  # left, right, top, bottom (, ...)
    kept: Pad2 = (0, 0)
    if native and len(amounts) >= 4:
        rows, cols = min(amounts[2], amounts[3]), min(amounts[0], amounts[1])
        amounts = [amounts[0] - cols, amounts[1] - cols, amounts[2] - rows, amounts[3] - rows,
                   *amounts[4:]]
        kept = (rows, cols)
    return (amounts if any(amounts) else None), kept


class Op:
    """Base of all operations; see the module docstring for the contract."""

    kind: ClassVar[str] = "op"
    # Properties the planner and the strategies read, as flags (never as lists of kinds), so a
    # new op states them where it is defined.
    #: True when a band of output rows can be computed from a band of input rows.
    spatial: ClassVar[bool] = True
    #: True when the op holds parameters (conv, linear, affine): a task reads the slice of them
    #: that belongs to its output channels, and its weight bytes count.
    has_weights: ClassVar[bool] = False
    #: True when the op performs no MACs and a device may recompute a region of it from its
    #: inputs instead of receiving that region, when the inputs cost fewer bytes to get.
    recomputable: ClassVar[bool] = False
    #: True for a sliding window over rows and columns (conv, pool): the unit a spatial fused
    #: stack counts its depth in.
    sliding_window: ClassVar[bool] = False
    #: True when only the first input's pieces say where the output is computed (a residual
    #: add: the other operands are fetched to wherever the first one lies).
    led_by_first_input: ClassVar[bool] = False
    #: True when the output is the sum of partial results over bands of input rows (a global
    #: average pool): given ``WeightSlice(inp=rows)``, :meth:`input_boxes` and :meth:`run` compute
    #: the partial result of those rows, and the planner's reduction adds the partials up.
    sums_over_rows: bool = False

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...]) -> None:
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.out_shape = tuple(out_shape)

    def fill(self, i: int) -> float:
        """Value of out-of-bounds input elements (the op's padding)."""
        return 0.0

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        """Ideal input regions needed for ``out`` (None: that input is not needed)."""
        return [out for _ in self.in_shapes]

    def follow(self, piece: Box, i: int) -> Box | None:
        """The output region computable from a piece of input ``i`` alone, if the op maps it."""
        return piece if not piece.empty else None

    def macs(self, out: Box, w: WeightSlice | None) -> int:
        """Multiply-accumulates per batch item to produce ``out`` (0 for ops without weights)."""
        return 0

    def weight_bytes(self, w: WeightSlice | None) -> int:
        """Bytes of parameters the slice ``w`` reads."""
        return 0

    #: True when the kernel can pad its first input itself (zeros for a conv, -inf for a max
    #: pool): the backend then passes the symmetric part of the padding as ``pad`` instead of
    #: copying the input into a padded tensor.
    native_padding: bool = False

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        """Compute exactly ``out``; inputs hold exactly the regions of :meth:`input_boxes`,
        less ``pad`` (rows, columns) on each side, which the kernel adds itself."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human description for plans and errors."""
        return self.kind


class _Weighted(Op):
    """Counts shared by convolution and linear layers: MACs = outputs x fan-in."""

    has_weights = True
    out_channels: int
    bias: Tensor | None

    def _fan_in(self, w: WeightSlice | None) -> int:
        """Input elements one output element reads (with the slice's input channels)."""
        raise NotImplementedError

    def macs(self, out: Box, w: WeightSlice | None) -> int:
        if w is not None and not w.weights:
            return 0
        return out.numel * self._fan_in(w)

    def weight_bytes(self, w: WeightSlice | None) -> int:
        o = self.out_channels if w is None else w.out[1] - w.out[0]
        n = 0
        if w is None or w.weights:
            n += o * self._fan_in(w)
        if self.bias is not None and (w is None or w.bias):
            n += o
        return n * FP32_BYTES


class Conv(_Weighted):
    """2-D convolution with any kernel, stride, padding, dilation and groups (BN folded in)."""

    kind = "conv"
    sliding_window = True
    native_padding = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> None:
        super().__init__(in_shapes, out_shape)
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.out_channels = int(weight.shape[0])
        self.in_channels = int(weight.shape[1]) * groups
        self.kernel = (int(weight.shape[2]), int(weight.shape[3]))
        self.out_per_group = self.out_channels // groups
        self.in_per_group = self.in_channels // groups

    def describe(self) -> str:
        g = f", groups={self.groups}" if self.groups > 1 else ""
        return (f"conv {self.in_channels}->{self.out_channels} k{self.kernel[0]}x{self.kernel[1]} "
                f"s{self.stride[0]} p{self.padding[0]}{g}")

    def _in_channels(self, out: Range, w: WeightSlice | None) -> Range:
        if w is not None and w.inp is not None:
            return w.inp
        if self.groups == 1:
            return (0, self.in_channels)
        g0 = out[0] // self.out_per_group
        g1 = (out[1] - 1) // self.out_per_group + 1
        return (g0 * self.in_per_group, g1 * self.in_per_group)

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        if w is not None and not w.weights:
            return [None]
        box = _window_box(out, self.kernel, self.stride, self.padding, self.dilation)
        return [box.with_range(0, self._in_channels(out.ranges[0], w))]

    def follow(self, piece: Box, i: int) -> Box | None:
        return None

    def _fan_in(self, w: WeightSlice | None) -> int:
        cin = self.in_per_group if w is None or w.inp is None else w.inp[1] - w.inp[0]
        return cin * self.kernel[0] * self.kernel[1]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        w = w or WeightSlice(out.ranges[0])
        o0, o1 = w.out
        if not w.weights:
            raise ValueError("a convolution task without weights is a reduction, not a conv run")
        x = _first(xs)
        res = RunResult(out=x)
        if w.inp is not None:  # input-channel partial sum (groups == 1): no bias here
            wt = self.weight[o0:o1, w.inp[0]:w.inp[1]]
            y = self._conv(x, wt, None, pad, 1)
            res.out, res.macs, res.weights = y, y.numel() * wt[0].numel(), [wt]
            return res
        bias = self.bias[o0:o1] if self.bias is not None and w.bias else None
        if self.groups == 1:
            wt = self.weight[o0:o1]
            y = self._conv(x, wt, bias, pad, 1)
            res.out, res.macs, res.weights = y, y.numel() * wt[0].numel(), [wt]
        else:
            res = self._grouped(x, o0, o1, bias, pad)
        if bias is not None:
            res.weights.append(bias)
        return res

    def _conv(self, x: Tensor, wt: Tensor, bias: Tensor | None, pad: Pad2,
              groups: int) -> Tensor:
        """The kernel on a slice, with the algorithm torch picks for the whole layer."""
        return conv2d(x, wt, bias, self.stride, pad, self.dilation, groups,
                      whole_in_shape=self.in_shapes[0], whole_weight_shape=self.weight.shape,
                      whole_padding=self.padding, whole_groups=self.groups)

    def _grouped(self, x: Tensor, o0: int, o1: int, bias: Tensor | None,
                 pad: Pad2) -> RunResult:
        """A grouped conv over output channels [o0, o1), which may cut groups at either end."""
        opg, ipg = self.out_per_group, self.in_per_group
        base_in = (o0 // opg) * ipg
        # segments: a partial head group, whole groups, a partial tail group
        cuts = sorted({o0, o1, min(o1, -(-o0 // opg) * opg), max(o0, (o1 // opg) * opg)})
        outs: list[Tensor] = []
        res = RunResult(out=x)
        for a, b in itertools.pairwise(cuts):
            if b <= a:
                continue
            g0, g1 = a // opg, (b - 1) // opg + 1
            xin = x[:, g0 * ipg - base_in:g1 * ipg - base_in]
            wt = self.weight[a:b]
            bt = None if bias is None else bias[a - o0:b - o0]
            y = self._conv(xin, wt, bt, pad, g1 - g0)
            outs.append(y)
            res.macs += y.numel() * wt[0].numel()
            res.weights.append(wt)
        res.out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        return res


class Linear(_Weighted):
    """Fully connected layer over (N, F) tensors."""

    kind = "linear"
    spatial = False

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 weight: Tensor, bias: Tensor | None) -> None:
        super().__init__(in_shapes, out_shape)
        self.weight = weight
        self.bias = bias
        self.out_channels = int(weight.shape[0])
        self.in_channels = int(weight.shape[1])
        self.groups = 1

    def describe(self) -> str:
        return f"linear {self.in_channels}->{self.out_channels}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        if w is not None and not w.weights:
            return [None]
        inp = (0, self.in_channels) if w is None or w.inp is None else w.inp
        return [Box((inp,))]

    def follow(self, piece: Box, i: int) -> Box | None:
        return None

    def _fan_in(self, w: WeightSlice | None) -> int:
        return self.in_channels if w is None or w.inp is None else w.inp[1] - w.inp[0]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        w = w or WeightSlice(out.ranges[0])
        x = _first(xs)
        o0, o1 = w.out
        i0, i1 = (0, self.in_channels) if w.inp is None else w.inp
        wt = self.weight[o0:o1, i0:i1]
        bias = self.bias[o0:o1] if self.bias is not None and w.bias and w.inp is None else None
        y = F.linear(x, wt, bias)
        used = [wt] + ([bias] if bias is not None else [])
        return RunResult(out=y, macs=y.numel() * wt.shape[1], weights=used)


class Affine(Op):
    """Per-channel scale and shift: an eval-mode BatchNorm that could not be folded."""

    kind = "affine"
    recomputable = True
    has_weights = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 scale: Tensor, shift: Tensor) -> None:
        super().__init__(in_shapes, out_shape)
        self.scale = scale
        self.shift = shift
        self.out_channels = int(scale.shape[0])

    def weight_bytes(self, w: WeightSlice | None) -> int:
        o = self.out_channels if w is None else w.out[1] - w.out[0]
        return 2 * o * FP32_BYTES

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        c0, c1 = out.ranges[0]
        s, t = self.scale[c0:c1], self.shift[c0:c1]
        shape = (1, c1 - c0) + (1,) * (x.dim() - 2)
        return RunResult(out=torch.addcmul(t.view(shape), x, s.view(shape)), weights=[s, t])


class Elementwise(Op):
    """A stand-alone activation chain (when it could not be fused into its producer)."""

    kind = "act"
    recomputable = True

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        return RunResult(out=x.clone())


class _Broadcast(Op):
    """Element-wise arithmetic of two or more tensors with broadcasting (NumPy rules, same rank).

    An input of size 1 in a dimension is read whole in that dimension (a per-channel gate of
    shape (C, 1, 1) multiplies every row of a band). The planner lets such a layer follow the
    pieces of its first input, which has the output's shape whenever the graph builder could
    put a full-size operand first (it does for the commutative add and mul).
    """

    led_by_first_input = True
    recomputable = True


    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        boxes: list[Box | None] = []
        for s in self.in_shapes:
            boxes.append(Box(tuple((0, 1) if size == 1 and full != 1 else rng for size, full, rng
                                   in zip(s, self.out_shape, out.ranges, strict=True))))
        return boxes

    def follow(self, piece: Box, i: int) -> Box | None:
        if i == 0 and self.in_shapes[0] == self.out_shape and not piece.empty:
            return piece
        return None

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        combine = _COMBINE[self.kind]
        acc = xs[0]
        assert acc is not None
        for x in xs[1:]:
            assert x is not None
            acc = combine(acc, x)
        if len(xs) == 1:
            acc = acc.clone()
        return RunResult(out=acc)


class Add(_Broadcast):
    """Element-wise sum (residual connections), with broadcasting."""

    kind = "add"


class Mul(_Broadcast):
    """Element-wise product with broadcasting (squeeze-and-excitation and other gates)."""

    kind = "mul"


class Sub(_Broadcast):
    """Element-wise difference with broadcasting."""

    kind = "sub"


class Div(_Broadcast):
    """Element-wise quotient with broadcasting."""

    kind = "div"


#: The element-wise operation (out of place) of each broadcasting op, by kind.
_COMBINE: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "add": torch.add, "mul": torch.mul, "sub": torch.sub, "div": torch.div}


class Cat(Op):
    """Concatenation of any number of tensors along one box axis (default 0: channels)."""

    kind = "cat"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...],
                 axis: int = 0) -> None:
        super().__init__(in_shapes, out_shape)
        self.axis = axis
        self.offsets: list[int] = []
        off = 0
        for s in self.in_shapes:
            self.offsets.append(off)
            off += s[axis]

    def describe(self) -> str:
        return "cat" if self.axis == 0 else f"cat dim {self.axis + 1}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c0, c1 = out.ranges[self.axis]
        boxes: list[Box | None] = []
        for off, s in zip(self.offsets, self.in_shapes, strict=True):
            a, b = max(c0, off), min(c1, off + s[self.axis])
            boxes.append(out.with_range(self.axis, (a - off, b - off)) if a < b else None)
        return boxes

    def follow(self, piece: Box, i: int) -> Box | None:
        if piece.empty:
            return None
        a, b = piece.ranges[self.axis]
        return piece.with_range(self.axis, (a + self.offsets[i], b + self.offsets[i]))

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        parts = [x for x in xs if x is not None]
        if len(parts) == 1:
            return RunResult(out=parts[0].clone())
        return RunResult(out=torch.cat(parts, dim=self.axis + 1))


def _follow_planes(op: Op, piece: Box) -> Box | None:
    """For an op whose output channel c is made from input channel c alone: the output region
    a piece of the first input holding whole planes maps to (the same channels, all of the
    output's rows and columns); None for a piece that cuts the planes."""
    if piece.empty or piece.ranges[1:] != Box.full(op.in_shapes[0]).ranges[1:]:
        return None
    return Box((piece.ranges[0], *Box.full(op.out_shape).ranges[1:]))


class _PlaneWise(Op):
    """An op whose output channel c is made from input channel c alone (pools over whole planes,
    padding, resizing, views): a piece of the input holding whole planes (all rows and columns)
    maps to the same channels of the output, with all of the output's rows and columns. By
    default the output's channels need the whole planes of the same input channels."""

    def follow(self, piece: Box, i: int) -> Box | None:
        return _follow_planes(self, piece)

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        return [self._planes(out.ranges[0])]

    def _planes(self, channels: Range) -> Box:
        """The whole planes of the first input for ``channels``."""
        return Box.full(self.in_shapes[0]).with_range(0, channels)


class FlattenSpatial(_PlaneWise):
    """``(C, H, W) -> (C, H*W)``: a detection head's feature map viewed as a list of cells."""

    kind = "view"
    recomputable = True
    spatial = False

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c, (l0, l1) = out.ranges
        width = self.in_shapes[0][2]
        if l1 <= l0:
            return [Box((c, (0, 0), (0, width)))]
        return [Box((c, (l0 // width, (l1 - 1) // width + 1), (0, width)))]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        l0, l1 = out.ranges[1]
        base = (l0 // self.in_shapes[0][2]) * self.in_shapes[0][2]
        return RunResult(out=x.flatten(2)[:, :, l0 - base:l1 - base].clone())


class Pool(Op):
    """Max or average pooling with any kernel, stride, padding, dilation (max) and ceil_mode."""

    kind = "pool"
    sliding_window = True
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 mode: str, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int] = (1, 1),
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(in_shapes, out_shape)
        self.mode = mode
        self.native_padding = mode == "max"  # avg pools divide by counts: pad explicitly
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def describe(self) -> str:
        ceil = " ceil" if self.ceil_mode else ""
        return f"{self.mode}pool k{self.kernel[0]} s{self.stride[0]} p{self.padding[0]}{ceil}"

    def fill(self, i: int) -> float:
        return NEG_INF if self.mode == "max" else 0.0

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        return [_window_box(out, self.kernel, self.stride, self.padding, self.dilation)]

    def follow(self, piece: Box, i: int) -> Box | None:
        """Channel c of the output pools channel c of the input: whole planes follow."""
        return _follow_planes(self, piece)

    def _divisor(self, rng: Range, dim: int) -> Tensor:
        """PyTorch's avg-pool divisor along one dimension for output positions ``rng``."""
        size = self.in_shapes[0][1 + dim]
        k, s, p = self.kernel[dim], self.stride[dim], self.padding[dim]
        counts = []
        for o in range(*rng):
            start = o * s - p
            end = min(start + k, size + p)
            if self.count_include_pad:
                counts.append(end - start)
            else:
                counts.append(min(end, size) - max(start, 0))
        return torch.tensor(counts, dtype=torch.float32)

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        if self.mode == "max":
            y = F.max_pool2d(x, self.kernel, self.stride, pad, self.dilation)
            return RunResult(out=y)
        total = F.avg_pool2d(x, self.kernel, self.stride, 0, divisor_override=1)
        if self.divisor_override is not None:
            return RunResult(out=total / self.divisor_override)
        dh = self._divisor(out.ranges[1], 0)
        dw = self._divisor(out.ranges[2], 1)
        return RunResult(out=total / (dh[:, None] * dw[None, :]))


class AdaptiveAvgPool(_PlaneWise):
    """Adaptive average pooling (global when the output is 1x1); never split by rows."""

    kind = "adaptive_avgpool"
    recomputable = True
    spatial = False

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        return RunResult(out=F.adaptive_avg_pool2d(x, (self.out_shape[1], self.out_shape[2])))


class Flatten(Op):
    """(N, C, H, W) -> (N, C*H*W); a channel slice maps to a contiguous feature range."""

    kind = "flatten"
    recomputable = True
    spatial = False

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...]) -> None:
        super().__init__(in_shapes, out_shape)
        self.plane = math.prod(self.in_shapes[0][1:])

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        f0, f1 = out.ranges[0]
        full = Box.full(self.in_shapes[0])
        c = (f0 // self.plane, -(-f1 // self.plane))
        return [full.with_range(0, c)]

    def follow(self, piece: Box, i: int) -> Box | None:
        full = Box.full(self.in_shapes[0])
        if piece.empty or piece.ranges[1:] != full.ranges[1:]:
            return None
        c0, c1 = piece.ranges[0]
        return Box(((c0 * self.plane, c1 * self.plane),))

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        f0, f1 = out.ranges[0]
        base = (f0 // self.plane) * self.plane
        return RunResult(out=x.flatten(1)[:, f0 - base:f1 - base].clone())


class Reorg(Op):
    """YOLOv2's reorg: space-to-depth with stride s (channel c*s*s + i*s + j, as in
    pixel_unshuffle)."""

    kind = "reorg"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 stride: int) -> None:
        super().__init__(in_shapes, out_shape)
        self.stride = stride

    def describe(self) -> str:
        return f"reorg s{self.stride}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        s = self.stride
        (o0, o1), (h0, h1), (w0, w1) = out.ranges
        return [Box(((o0 // (s * s), (o1 - 1) // (s * s) + 1), (h0 * s, h1 * s), (w0 * s, w1 * s)))]

    def follow(self, piece: Box, i: int) -> Box | None:
        s = self.stride
        (c0, c1), (h0, h1), (w0, w1) = piece.ranges
        if piece.empty or h0 % s or h1 % s or w0 % s or w1 % s:
            return None
        return Box(((c0 * s * s, c1 * s * s), (h0 // s, h1 // s), (w0 // s, w1 // s)))

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        s2 = self.stride * self.stride
        o0, o1 = out.ranges[0]
        base = (o0 // s2) * s2
        y = F.pixel_unshuffle(x, self.stride)
        return RunResult(out=y[:, o0 - base:o1 - base].contiguous())


class Pad(_PlaneWise):
    """Constant padding of the last two dimensions (may be negative-free only)."""

    kind = "pad"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 left: int, right: int, top: int, bottom: int, value: float) -> None:
        super().__init__(in_shapes, out_shape)
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.value = value

    def describe(self) -> str:
        return f"pad l{self.left} r{self.right} t{self.top} b{self.bottom} value={self.value}"

    def fill(self, i: int) -> float:
        return self.value

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c, (h0, h1), (w0, w1) = out.ranges
        return [Box((c, (h0 - self.top, h1 - self.top), (w0 - self.left, w1 - self.left)))]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        return RunResult(out=x.clone())


class GlobalPool(_PlaneWise):
    """Mean or max over all rows and columns: ``(C, H, W) -> (C, 1, 1)`` (``keepdim``) or
    ``(C,)``. Squeeze-and-excitation blocks and classifier heads.

    A mean is a sum of partial results over bands of rows: with ``WeightSlice(inp=(r0, r1))``
    the op reads rows ``r0:r1`` only and returns their sum divided by H x W, so that the
    partials of all bands add up to the mean (``sums_over_rows``).
    """

    kind = "global_pool"
    recomputable = True
    spatial = False

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 mode: str) -> None:
        super().__init__(in_shapes, out_shape)
        self.mode = mode
        self.keepdim = len(out_shape) == 3
        self.sums_over_rows = mode == "avg"

    def describe(self) -> str:
        return f"global {self.mode}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        planes = self._planes(out.ranges[0])
        return [planes if w is None or w.inp is None else planes.with_range(1, w.inp)]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        if self.mode == "max":
            return RunResult(out=x.amax((2, 3), keepdim=self.keepdim))
        if w is not None and w.inp is not None:
            _, h, wd = self.in_shapes[0]
            return RunResult(out=x.sum((2, 3), keepdim=self.keepdim) / (h * wd))
        return RunResult(out=x.mean((2, 3), keepdim=self.keepdim))


class Shuffle(Op):
    """Channel shuffle with ``groups`` (ShuffleNet): output channel j is input channel
    ``(j % groups) * (C // groups) + j // groups`` (view, transpose, view)."""

    kind = "shuffle"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 groups: int) -> None:
        super().__init__(in_shapes, out_shape)
        self.groups = groups
        c = self.in_shapes[0][0]
        per = c // groups
        self.source = [(j % groups) * per + j // groups for j in range(c)]

    def describe(self) -> str:
        return f"channel shuffle g{self.groups}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c0, c1 = out.ranges[0]
        src = self.source[c0:c1]
        return [out.with_range(0, (min(src), max(src) + 1))]

    def follow(self, piece: Box, i: int) -> Box | None:
        if piece.empty or piece.ranges[0] != (0, self.in_shapes[0][0]):
            return None
        return piece

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        c0, c1 = out.ranges[0]
        src = self.source[c0:c1]
        idx = torch.tensor([s - min(src) for s in src], dtype=torch.long)
        return RunResult(out=x.index_select(1, idx))


class Slice(Op):
    """Channels ``[start, stop)`` of the input (``chunk``, ``split``, ``narrow``, ``x[:, a:b]``:
    ShuffleNetV2 and CSP blocks)."""

    kind = "slice"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 start: int, stop: int) -> None:
        super().__init__(in_shapes, out_shape)
        self.start, self.stop = start, stop

    def describe(self) -> str:
        return f"channels {self.start}:{self.stop}"

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c0, c1 = out.ranges[0]
        return [out.with_range(0, (c0 + self.start, c1 + self.start))]

    def follow(self, piece: Box, i: int) -> Box | None:
        if piece.empty:
            return None
        a, b = piece.ranges[0]
        a, b = max(a, self.start), min(b, self.stop)
        return piece.with_range(0, (a - self.start, max(a, b) - self.start))

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        return RunResult(out=x.clone())


class ChannelView(_PlaneWise):
    """A reshape that keeps channels and adds or drops trailing dimensions of size 1:
    ``(C,) <-> (C, 1, 1)`` (a gate from a Linear layer viewed as a per-channel map)."""

    kind = "view"
    recomputable = True
    spatial = False

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        return RunResult(out=x.reshape(x.shape[0], *out.shape).clone())


class Upsample(_PlaneWise):
    """Resizing of rows and columns (nearest, bilinear, bicubic, area; by scale or to a size).

    Every such mode is separable: output row r is a fixed combination of input rows. The
    combination matrices ``rows`` (out_h x in_h) and ``cols`` (out_w x in_w) are taken from
    torch's own kernel at build time (the image of each one-hot input row), so the rows a band
    needs (its halo) are exactly those with a non-zero weight, and the arithmetic is torch's.
    Nearest modes copy rows (one weight of 1 per output row) and are computed by indexing.
    """

    kind = "upsample"
    recomputable = True

    def __init__(self, in_shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], *,
                 rows: Tensor, cols: Tensor, mode: str) -> None:
        super().__init__(in_shapes, out_shape)
        self.rows, self.cols, self.mode = rows, cols, mode
        self.copies = bool(((rows == 0) | (rows == 1)).all() and ((cols == 0) | (cols == 1)).all()
                           and (rows.sum(1) == 1).all() and (cols.sum(1) == 1).all())
        self._row_span = self._spans(rows)
        self._col_span = self._spans(cols)

    @staticmethod
    def _spans(m: Tensor) -> list[Range]:
        spans: list[Range] = []
        for row in m:
            nz = torch.nonzero(row).flatten()
            spans.append((int(nz.min()), int(nz.max()) + 1) if nz.numel() else (0, 0))
        return spans

    def describe(self) -> str:
        return (f"upsample {self.mode} {self.in_shapes[0][1]}x{self.in_shapes[0][2]}->"
                f"{self.out_shape[1]}x{self.out_shape[2]}")

    def _need(self, spans: list[Range], rng: Range) -> Range:
        a, b = rng
        if b <= a:
            return (0, 0)
        used = [spans[i] for i in range(a, b) if spans[i][1] > spans[i][0]]
        return (min(s[0] for s in used), max(s[1] for s in used)) if used else (0, 0)

    def input_boxes(self, out: Box, w: WeightSlice | None) -> list[Box | None]:
        c, h, wd = out.ranges
        return [Box((c, self._need(self._row_span, h), self._need(self._col_span, wd)))]

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        x = _first(xs)
        _, (r0, r1), (q0, q1) = out.ranges
        _, (i0, i1), (j0, j1) = self.input_boxes(out, w)[0].ranges  # type: ignore[union-attr]
        rows = self.rows[r0:r1, i0:i1]
        cols = self.cols[q0:q1, j0:j1]
        if self.copies:
            y = x.index_select(2, rows.argmax(1)).index_select(3, cols.argmax(1))
            return RunResult(out=y)
        y = torch.einsum("oh,nchw->ncow", rows, x)
        return RunResult(out=torch.einsum("pw,ncow->ncop", cols, y).contiguous())


def resize_matrix(size_in: int, size_out: int, scale: float | None, mode: str,
                  align_corners: bool | None, antialias: bool = False) -> Tensor:
    """The (size_out x size_in) matrix torch's ``interpolate`` applies along one dimension:
    column i is what the kernel makes of a one-hot input row i. ``scale`` is the scale factor
    the caller gave (torch computes source positions from it), None when a size was given."""
    probe = torch.eye(size_in, dtype=torch.float32).view(1, size_in, size_in, 1)
    kwargs: dict[str, object] = {"mode": mode}
    if mode not in ("nearest", "nearest-exact", "area"):
        kwargs["align_corners"] = align_corners
        kwargs["antialias"] = antialias
    if scale is None:
        y = F.interpolate(probe, size=(size_out, 1), **kwargs)  # type: ignore[arg-type]
    else:
        y = F.interpolate(probe, scale_factor=(scale, 1.0), **kwargs)  # type: ignore[arg-type]
    return y[0, :, :, 0].T.contiguous()


class Reduce(Op):
    """Sum of input-channel partial results, then bias and the layer's fused activations.

    Not a layer of the model: the planner creates it to finish a layer split by input channel.
    Its inputs are the partial tensors of the devices that contributed.
    """

    kind = "reduce"

    def __init__(self, layer_op: Op, n_parts: int) -> None:
        super().__init__([layer_op.out_shape] * n_parts, layer_op.out_shape)
        self.layer_op = layer_op

    def follow(self, piece: Box, i: int) -> Box | None:
        return None

    def weight_bytes(self, w: WeightSlice | None) -> int:
        return self.layer_op.weight_bytes(w)

    def run(self, xs: Sequence[Tensor | None], out: Box, w: WeightSlice | None,
            pad: Pad2 = (0, 0)) -> RunResult:
        parts = [x for x in xs if x is not None]
        acc = parts[0] + parts[1] if len(parts) > 1 else parts[0].clone()
        for x in parts[2:]:
            acc.add_(x)
        res = RunResult(out=acc)
        bias = getattr(self.layer_op, "bias", None)
        if bias is not None and w is not None and w.bias:
            b = bias[w.out[0]:w.out[1]]
            shape = (1, b.shape[0]) + (1,) * (acc.dim() - 2)
            acc.add_(b.view(shape))
            res.weights.append(b)
        return res
