"""Every zoo model x every strategy x device counts {2, 3, 4, 8}, at the canonical input size:
the partitioned output equals the model's, and the measured trace equals the plan.

The whole matrix is heavy (``pytest --heavy``, and CI): the default run checks every strategy
on the suite's models and on drawn random CNNs (suites/, tests/unit/test_equivalence_property.py)
and every op in tests/unit/test_edge_ops.py.

Tolerance as in test_equivalence_property: ``rtol=1e-4, atol=1e-5 * max(1, max|reference|)``.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from pytest_edgeenergy import build_model, list_models, model_input_shape, partition

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
COUNTS = [2, 3, 4, 8]
ZOO = [m for m in list_models() if m != "tinycnn"] + ["tinycnn"]
CASES = [pytest.param(name, strategy, n, id=f"{name}-{strategy}-{n}", marks=pytest.mark.heavy)
         for name in ZOO for strategy in STRATEGIES for n in COUNTS]


@cache
def _reference(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    model = build_model(name)
    x = torch.randn(model_input_shape(name), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return model, x, model(x)


@pytest.mark.parametrize(("name", "strategy", "n"), CASES)
def test_every_zoo_model_partitions_exactly_with_trace_equal_to_plan(
        name: str, strategy: str, n: int) -> None:
    model, x, ref = _reference(name)
    pm = partition(model, strategy, n, x.shape)
    out = pm(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert pm.trace.device_stats() == pm.plan.device_stats()
