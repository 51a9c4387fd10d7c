"""Every zoo model x every strategy x device counts {2, 3, 4, 8}, at the canonical input size:
the partitioned output equals the model's, and the measured trace equals the plan.

A plain ``pytest`` runs the three-device column of the classic models (an uneven split, where an
off-by-one slice shows); the other counts and the edge CNNs are heavy (``pytest --heavy``, CI).

Tolerance as in test_equivalence_property: ``rtol=1e-4, atol=1e-5 * max(1, max|reference|)``.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from pytest_edgeenergy import build_model, list_models, model_input_shape, partition

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
COUNTS = [2, 3, 4, 8]
#: the edge CNNs of issue 12: their full matrix runs with the heavy tests (a few minutes);
#: every op they use has a cheap test in the default run (tests/unit/test_edge_ops.py)
HEAVY = frozenset({"efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small",
                   "shufflenet_v2", "yolov8n"})
ZOO = [m for m in list_models() if m != "tinycnn"] + ["tinycnn"]
DEFAULT_COUNT = 3
CASES = [pytest.param(name, strategy, n, id=f"{name}-{strategy}-{n}",
                      marks=() if n == DEFAULT_COUNT and name not in HEAVY else pytest.mark.heavy)
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
