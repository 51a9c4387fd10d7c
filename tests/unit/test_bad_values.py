"""Bad shapes, inputs and models get one PartitionError naming them, never a raw torch error
(issue 9, items 5 and 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pytest_edgeenergy import PartitionError, build_graph, build_model, partition
from pytest_edgeenergy.checks import as_seed, as_shape, as_tolerance

SHAPE = (1, 3, 32, 32)


@pytest.mark.parametrize(("shape", "pattern"), [
    ((1, 3, 8.5, 8), r"size 2 is 8\.5 \(float\), not an integer"),
    ((1, 3, 32.0, 32), r"size 2 is 32\.0 \(float\), not an integer"),
    ("1,3,8,8", r"'1,3,8,8' is not \(N, C, H, W\).*string"),
    ((1, 3, True, 32), r"size 2 is True \(bool\)"),
    ((1, 3, "32", 32), r"size 2 is '32' \(str\)"),
    ((1, 3, 0, 32), r"size 2 is 0"),
    ((1, 3, -32, 32), r"size 2 is -32"),
    (32, r"it is a int"),
    (None, r"it is a NoneType"),
    ((1, 3, 32, 32, 1), r"it has 5 sizes"),
])
def test_a_shape_that_is_not_four_positive_integers_is_refused_by_value(
        shape: object, pattern: str) -> None:
    with pytest.raises(PartitionError, match=r"input shape .*" + pattern + r".*strategy 'layer'"):
        partition(build_model("tinycnn"), "layer", 2, shape)  # type: ignore[arg-type]


def test_a_non_integer_shape_is_never_truncated_by_build_graph() -> None:
    with pytest.raises(PartitionError, match="not an integer"):
        build_graph(build_model("tinycnn"), (1, 3, 32.7, 32))  # type: ignore[arg-type]


def test_integer_shapes_from_numpy_and_torch_are_accepted() -> None:
    assert as_shape((np.int64(1), 3, torch.tensor(32), 32)) == SHAPE
    assert as_shape(torch.Size(SHAPE)) == SHAPE


@pytest.mark.parametrize("x", [
    [[1.0]], None, 1.0, np.zeros(SHAPE, dtype=np.float32)], ids=["list", "None", "float", "numpy"])
def test_calling_a_partitioned_model_on_a_non_tensor_names_its_type(x: object) -> None:
    pm = partition(build_model("tinycnn"), "spatial", 2, SHAPE)
    with pytest.raises(PartitionError, match=r"input must be a torch.Tensor.*got "
                                             + type(x).__name__):
        pm(x)


def test_calling_a_partitioned_model_on_a_meta_tensor_is_refused() -> None:
    pm = partition(build_model("tinycnn"), "spatial", 2, SHAPE)
    with pytest.raises(PartitionError, match=r"input is on device 'meta'.*CPU"):
        pm(torch.empty(SHAPE, device="meta"))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64, torch.complex64])
def test_calling_a_partitioned_model_on_another_dtype_names_it(dtype: torch.dtype) -> None:
    pm = partition(build_model("tinycnn"), "spatial", 2, SHAPE)
    with pytest.raises(PartitionError, match=rf"dtype {dtype} is not supported.*float32"):
        pm(torch.zeros(SHAPE, dtype=dtype))


def test_a_sparse_input_is_refused_with_the_remedy() -> None:
    pm = partition(build_model("tinycnn"), "spatial", 2, SHAPE)
    with pytest.raises(PartitionError, match=r"layout torch.sparse_coo.*to_dense"):
        pm(torch.zeros(SHAPE).to_sparse())


def test_float64_batchnorm_buffers_are_refused_by_name() -> None:
    model = build_model("tinycnn")
    bn = model.get_submodule("stem_bn")
    assert isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None
    bn.running_var = bn.running_var.double()
    with pytest.raises(PartitionError, match=r"buffer 'stem_bn.running_var' has dtype "
                                             r"torch.float64.*model.float\(\)"):
        partition(model, "spatial", 2, SHAPE)


def test_a_model_on_the_meta_device_is_refused_before_it_runs() -> None:
    with torch.device("meta"):
        model = build_model("tinycnn").__class__()
    with pytest.raises(PartitionError, match=r"parameter 'stem.weight' is on device 'meta'"):
        partition(model.eval(), "spatial", 2, SHAPE)


def test_something_that_is_not_a_module_is_refused_as_a_model() -> None:
    with pytest.raises(PartitionError, match=r"model must be a torch.nn.Module, got int"):
        partition(3, "spatial", 2, SHAPE)  # type: ignore[arg-type]


def test_a_string_that_is_not_an_onnx_path_is_refused_as_a_model() -> None:
    with pytest.raises(PartitionError, match=r"model 'tinycnn' is neither an nn.Module nor the "
                                             r"path of an .onnx file"):
        partition("tinycnn", "spatial", 2, SHAPE)


@pytest.mark.parametrize("value", [-1e-5, float("nan"), float("inf"), "1e-5", True, None])
def test_a_bad_tolerance_is_refused_by_name(value: object) -> None:
    with pytest.raises(PartitionError, match=r"tolerance must be a finite number of 0 or more"):
        as_tolerance(value)


@pytest.mark.parametrize("value", ["abc", 1.5, -1, 2**64, True, None])
def test_a_bad_seed_is_refused_by_name(value: object) -> None:
    with pytest.raises(PartitionError, match=r"seed must be an integer from 0"):
        as_seed(value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_devices": "2"}, r"the gloo backend's device count \(at least one device\) must be an "
                      r"integer from 1 to 64"),
    ({"n_devices": 0}, r"the gloo backend's device count \(at least one device\) must be an "
                      r"integer from 1 to 64"),
    ({"n_devices": 2, "timeout_s": float("nan")}, r"timeout_s must be a finite number of "
                                                   r"seconds greater than 0, got nan"),
    ({"n_devices": 2, "timeout_s": "x"}, r"timeout_s must be a finite number of seconds"),
    ({"n_devices": 2, "port": 70000}, r"port must be an integer from 0 to 65535, got 70000"),
    ({"n_devices": 2, "threads_per_worker": -1}, r"threads_per_worker must be an integer"),
])
def test_bad_gloo_worker_settings_are_refused_before_any_process_starts(
        kwargs: dict[str, object], message: str) -> None:
    from pytest_edgeenergy.backends import GlooWorkers

    with pytest.raises(PartitionError, match=message):
        GlooWorkers(**kwargs)  # type: ignore[arg-type]


def test_a_model_seed_that_is_not_an_integer_is_refused_by_name() -> None:
    with pytest.raises(PartitionError, match=r"seed must be an integer from 0 to 2\*\*63 - 1, "
                                             r"got 'a'"):
        build_model("tinycnn", seed="a")  # type: ignore[arg-type]
