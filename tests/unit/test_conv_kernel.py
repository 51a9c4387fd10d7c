"""A slice of a convolution runs with the algorithm torch picks for the whole layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from pytest_edgeenergy.graph import convkernel
from pytest_edgeenergy.graph.convkernel import conv2d


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _onednn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []
    real = torch.mkldnn_convolution

    def recorded(x: torch.Tensor, *args: Any) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(torch, "mkldnn_convolution", recorded)
    return calls


@pytest.mark.skipif(not torch._C._has_mkldnn, reason="torch without oneDNN")
def test_a_band_of_a_layer_torch_runs_with_onednn_runs_with_onednn_too(
        monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    x = torch.randn(1, 256, 14, 14)  # above torch's size threshold: oneDNN for the whole layer
    w = torch.randn(256, 256, 3, 3)
    band = x[:, 64:128]  # an input-channel slice: below the threshold on its own
    calls = _onednn_calls(monkeypatch)
    y = conv2d(band, w[:, 64:128], None, (1, 1), (1, 1), (1, 1), 1, whole_in_shape=(256, 14, 14),
               whole_weight_shape=(256, 256, 3, 3), whole_padding=(1, 1), whole_groups=1)
    assert calls == [(1, 64, 14, 14)]
    torch.testing.assert_close(y, F.conv2d(band, w[:, 64:128], None, 1, 1), rtol=1e-4,
                               atol=1e-4)


def test_a_slice_of_a_layer_torch_runs_without_onednn_runs_as_torch_would(
        monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    x = torch.randn(1, 256, 14, 14)
    w = torch.randn(64, 256, 1, 1)  # a 1x1 conv on one thread: torch's own im2col kernel
    calls = _onednn_calls(monkeypatch)
    y = conv2d(x, w[:16], None, (1, 1), (0, 0), (1, 1), 1, whole_in_shape=(256, 14, 14),
               whole_weight_shape=(64, 256, 1, 1), whole_padding=(0, 0), whole_groups=1)
    assert calls == []
    assert convkernel._whole_layer_uses_onednn((1, 256, 14, 14), (64, 256, 1, 1), (1, 1),
                                               (0, 0), (1, 1), 1, 1) is False
    torch.testing.assert_close(y, F.conv2d(x, w[:16]), rtol=0, atol=0)


@pytest.mark.skipif(not torch._C._has_mkldnn, reason="torch without oneDNN")
def test_a_slice_on_one_thread_of_a_two_thread_run_takes_the_whole_layers_algorithm_on_two(
        monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    x = torch.randn(1, 256, 14, 14)
    w = torch.randn(64, 256, 1, 1)  # a 1x1 conv: oneDNN on two threads, im2col on one
    calls = _onednn_calls(monkeypatch)
    with convkernel.whole_layer_threads(2):
        y = conv2d(x, w[:16], None, (1, 1), (0, 0), (1, 1), 1, whole_in_shape=(256, 14, 14),
                   whole_weight_shape=(64, 256, 1, 1), whole_padding=(0, 0), whole_groups=1)
    assert calls == [(1, 256, 14, 14)]
    assert torch.get_num_threads() == 1  # asking torch for two threads' choice changed nothing
    torch.testing.assert_close(y, F.conv2d(x, w[:16]), rtol=1e-4, atol=1e-4)
    conv2d(x, w[:16], None, (1, 1), (0, 0), (1, 1), 1, whole_in_shape=(256, 14, 14),
           whole_weight_shape=(64, 256, 1, 1), whole_padding=(0, 0), whole_groups=1)
    assert len(calls) == 1  # outside it, the slice's own thread count again


def _gemm_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record the left operand's shape of every GEMM the pixels-as-rows path makes."""
    calls: list[tuple[int, ...]] = []
    real = convkernel._pixels_as_rows

    def recorded(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(convkernel, "_pixels_as_rows", recorded)
    return calls


@pytest.mark.parametrize(("batch", "rows", "stride", "bias"),
                         [(1, 2, 1, False), (1, 1, 1, True), (2, 1, 1, True), (1, 4, 2, True)])
def test_a_1x1_slice_with_few_pixels_runs_as_a_gemm_with_the_pixels_as_rows(
        monkeypatch: pytest.MonkeyPatch, one_thread: None, batch: int, rows: int,
        stride: int, bias: bool) -> None:
    # a band of rows (not contiguous) of a layer torch runs without oneDNN on one thread (a
    # 1x1 kernel; with stride 2, an input below torch's size threshold)
    c, size = (512, 7) if stride == 1 else (256, 8)
    x = torch.randn(batch, c, size, size)[:, :, :rows]
    w = torch.randn(2048, c, 1, 1)
    b = torch.randn(2048) if bias else None
    calls = _gemm_calls(monkeypatch)
    y = conv2d(x, w, b, (stride, stride), (0, 0), (1, 1), 1, whole_in_shape=(c, size, size),
               whole_weight_shape=(2048, c, 1, 1), whole_padding=(0, 0), whole_groups=1)
    out_rows, out_cols = len(range(0, rows, stride)), len(range(0, size, stride))
    assert calls == [(batch, c, out_rows, out_cols)]
    assert batch * out_rows * out_cols <= convkernel.MAX_SWAPPED_PIXELS
    expected = F.conv2d(x, w, b, stride)
    assert y.shape == expected.shape and y.is_contiguous()
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    # a channels-last input gives a channels-last output, as F.conv2d's does
    last = x.contiguous(memory_format=torch.channels_last)
    y = conv2d(last, w, b, (stride, stride), (0, 0), (1, 1), 1, whole_in_shape=(c, size, size),
               whole_weight_shape=(2048, c, 1, 1), whole_padding=(0, 0), whole_groups=1)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert len(calls) == 2
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)


def test_a_1x1_slice_with_more_pixels_or_padding_runs_as_torch_would(
        monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    w = torch.randn(2048, 512, 1, 1)
    calls = _gemm_calls(monkeypatch)
    onednn = _onednn_calls(monkeypatch)
    for x, padding in [(torch.randn(1, 512, 3, 7), (0, 0)),  # 21 pixels
                       (torch.randn(1, 512, 1, 7), (1, 1))]:  # padded: not a plain GEMM
        y = conv2d(x, w, None, (1, 1), padding, (1, 1), 1, whole_in_shape=(512, 7, 7),
                   whole_weight_shape=(2048, 512, 1, 1), whole_padding=padding, whole_groups=1)
        torch.testing.assert_close(y, F.conv2d(x, w, None, 1, padding), rtol=0, atol=0)
    assert calls == [] and onednn == []
