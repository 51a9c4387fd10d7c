"""Property: a partitioned random CNN computes what the CNN computes, and its trace is its plan.

fp32 tolerance: partial sums and bands change the order of floating-point additions, so outputs
are compared with ``rtol=1e-4`` and ``atol=1e-5 * max(1, max|reference|)``.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeenergy import Cluster, load_device, partition
from pytest_edgeenergy.randomcnn import CNNSpec, RandomCNN, cnn_specs

PROFILES = ["rpi4", "rpi3bplus", "jetson-nano-10w", "jetson-nano-5w"]


def assert_equivalent(out: torch.Tensor, ref: torch.Tensor) -> None:
    """The module's stated fp32 tolerance."""
    atol = 1e-5 * max(1.0, float(ref.abs().max()))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=atol)


@st.composite
def strategies_and_clusters(draw: st.DrawFn) -> tuple[str, dict[str, Any], Cluster]:
    name = draw(st.sampled_from(["layer", "spatial", "output-channel", "input-channel"]))
    params = {"fuse": draw(st.integers(1, 4))} if name == "spatial" else {}
    n = draw(st.integers(1, 9))
    if draw(st.booleans()):
        cluster = Cluster.homogeneous("rpi4", n)
    else:
        names = draw(st.lists(st.sampled_from(PROFILES), min_size=n, max_size=n))
        cluster = Cluster(tuple(load_device(p) for p in names))
    return name, params, cluster


@given(spec=cnn_specs(), case=strategies_and_clusters())
def test_a_partitioned_random_cnn_equals_the_cnn_and_its_trace_equals_its_plan(
        spec: CNNSpec, case: tuple[str, dict[str, Any], Cluster]) -> None:
    name, params, cluster = case
    model = RandomCNN(spec)
    x = torch.randn(spec.input_shape, generator=torch.Generator().manual_seed(spec.seed))
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, name, cluster, spec.input_shape, **params)
    out = pm(x)
    assert out.shape == ref.shape
    assert_equivalent(out, ref)
    assert pm.trace.device_stats() == pm.plan.device_stats()
    plan = pm.plan
    assert plan.skipped_macs >= 0 and plan.redundant_macs >= 0
    if name != "spatial":
        assert plan.total_macs == plan.graph_macs
        assert plan.redundant_macs == 0
