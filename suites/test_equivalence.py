"""Equivalence on shapes hypothesis draws: every strategy, every cluster, many small CNNs.

The zoo's models have one input shape each; here hypothesis draws the networks and their input
shapes (``pytest_edgeenergy.randomcnn``) and every strategy must still give the unpartitioned
model's output, with a trace equal to its plan's counts.
Examples are derandomised, so CI runs the same ones every time.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.partitioned import partition
from pytest_edgeenergy.plugin.fixtures import EQUIVALENCE_TOLERANCE, make_input
from pytest_edgeenergy.randomcnn import CNNSpec, RandomCNN, cnn_specs
from pytest_edgeenergy.strategies import Strategy
from pytest_edgeenergy.zoo import build_model


def _check(model: nn.Module, shape: tuple[int, ...], strategy: Strategy,
           cluster: Cluster) -> None:
    x = make_input(shape, seed=1)
    with torch.no_grad():
        reference = model(x)
    pm = partition(model, strategy, cluster, shape)
    output = pm(x)
    atol = EQUIVALENCE_TOLERANCE * float(reference.abs().max())
    torch.testing.assert_close(output, reference, rtol=0.0, atol=atol)
    assert pm.trace.device_stats() == pm.plan.device_stats()


@settings(max_examples=12, deadline=None, derandomize=True)
@given(spec=cnn_specs())
def test_every_strategy_matches_drawn_convnets(spec: CNNSpec, edge_strategy: Strategy,
                                               edge_cluster: Cluster) -> None:
    """A drawn CNN (random kernels, strides, padding, dilation, groups, pools with ceil_mode,
    residual adds, concatenations, reorg, padding, a Linear head) partitioned by each strategy
    gives the unpartitioned output."""
    _check(RandomCNN(spec), spec.input_shape, edge_strategy, edge_cluster)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(height=st.integers(8, 48), width=st.integers(8, 48), batch=st.integers(1, 2))
def test_every_strategy_matches_tinycnn_at_drawn_input_sizes(
        height: int, width: int, batch: int, edge_strategy: Strategy,
        edge_cluster: Cluster) -> None:
    """TinyCNN ends in a global pool, so any image size works: each must partition exactly."""
    _check(build_model("tinycnn"), (batch, 3, height, width), edge_strategy, edge_cluster)
