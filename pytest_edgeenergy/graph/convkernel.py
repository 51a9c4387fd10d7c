"""A slice of a convolution run with the algorithm torch picks for the whole layer.

For each call, torch chooses a convolution algorithm from the shapes (``_select_conv_backend``):
at batch 1 it falls back from oneDNN (mkldnn) to its im2col kernel (``Slow2d``) for inputs below
about 20k elements, and for 1x1 kernels on one thread. A slice of a layer (a band of rows, a
quarter of the channels) is often below the threshold when the whole layer is above it, and the
fallback takes up to twice as long per MAC, so a partitioned run would be slower than the model
for a reason that has nothing to do with partitioning. :func:`conv2d` therefore asks torch which
algorithm it would use for the *whole* layer (same batch, and the thread count the
unpartitioned model runs it on: the slice's own, or the run's whole budget inside
:func:`whole_layer_threads`, which the local backend's workers set when each device runs on a
share of the threads) and, when that is oneDNN, runs the slice with oneDNN too; otherwise it
calls ``F.conv2d`` as usual. The slice never gets an algorithm the unpartitioned layer would not
get.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

__all__ = ["MAX_SWAPPED_PIXELS", "conv2d", "whole_layer_threads"]

_Pair = tuple[int, int]

#: The most output pixels (batch included) for which a 1x1 convolution run as a GEMM takes the
#: pixels as the GEMM's rows (see the module's docstring).
MAX_SWAPPED_PIXELS = 16

_whole = threading.local()  # .threads: the thread count of the unpartitioned run, if set


@contextmanager
def whole_layer_threads(threads: int) -> Iterator[None]:
    """On this thread, choose a slice's algorithm as torch would for the whole layer on
    ``threads`` intra-op threads (the unpartitioned model's count), whatever number of threads
    the slice itself runs on."""
    before = getattr(_whole, "threads", None)
    _whole.threads = threads
    try:
        yield
    finally:
        _whole.threads = before


@lru_cache(maxsize=4096)
def _whole_layer_uses_onednn(in_shape: tuple[int, ...], weight_shape: tuple[int, ...],
                             stride: _Pair, padding: _Pair, dilation: _Pair, groups: int,
                             threads: int) -> bool:
    """True when torch runs a float32 CPU conv of these shapes with oneDNN at ``threads``
    intra-op threads (torch reads its own count, set to ``threads`` for the question)."""
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None or not torch._C._has_mkldnn:
        return False
    x = torch.empty(in_shape)  # never written: only its shape is read
    w = torch.empty(weight_shape)
    own = torch.get_num_threads()
    if own != threads:
        torch.set_num_threads(threads)
    try:
        backend = select(x, w, None, list(stride), list(padding), list(dilation), False, [0, 0],
                         groups, None)
    finally:
        if own != threads:
            torch.set_num_threads(own)
    return str(backend).endswith("Mkldnn")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: _Pair, padding: _Pair,
           dilation: _Pair, groups: int, *, whole_in_shape: Sequence[int],
           whole_weight_shape: Sequence[int], whole_padding: _Pair, whole_groups: int) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``, with oneDNN when torch
    would run the whole layer (input ``whole_in_shape`` without batch, weight
    ``whole_weight_shape``, ``whole_padding``, ``whole_groups``) with oneDNN."""
    if x.numel() and weight.numel() and x.dtype == torch.float32 and x.device.type == "cpu" \
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)) \
            and _whole_layer_uses_onednn((x.shape[0], *whole_in_shape), tuple(whole_weight_shape),
                                         stride, whole_padding, dilation, whole_groups,
                                         getattr(_whole, "threads", None)
                                         or torch.get_num_threads()):
        return torch.mkldnn_convolution(x, weight, bias, list(padding), list(stride),
                                        list(dilation), groups)
    if groups == 1 and weight.shape[2:] == (1, 1) and tuple(padding) == (0, 0) \
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        picked = x if tuple(stride) == (1, 1) else x[:, :, ::stride[0], ::stride[1]]
        if 0 < picked.shape[0] * picked.shape[2] * picked.shape[3] <= MAX_SWAPPED_PIXELS:
            last = x.is_contiguous(memory_format=torch.channels_last)
            return _pixels_as_rows(picked, weight, bias, channels_last=last)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def _pixels_as_rows(x: Tensor, weight: Tensor, bias: Tensor | None, *,
                    channels_last: bool) -> Tensor:
    """A 1x1 convolution (stride applied to ``x`` already) as the GEMM pixels x input channels
    times input channels x output channels; channels-last when asked (as ``F.conv2d`` gives
    for a channels-last input), contiguous otherwise."""
    n, c, h, w = x.shape
    out_channels = weight.shape[0]
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    wt = weight.reshape(out_channels, c).t()
    out = rows @ wt if bias is None else torch.addmm(bias, rows, wt)
    y = out.reshape(n, h, w, out_channels).permute(0, 3, 1, 2)  # channels-last already
    return y if channels_last else y.contiguous()
