"""Every zoo model x every strategy on the gloo backend with 4 devices: the output equals the
unpartitioned model's and the local backend's, and the trace equals the plan and the local
backend's trace. The whole matrix is ``heavy``; tinycnn's row runs by default."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from pytest_edgeenergy import (
    build_model,
    list_models,
    list_strategies,
    model_input_shape,
    partition,
)
from pytest_edgeenergy.backends import GlooWorkers
from pytest_edgeenergy.equivalence import DEFAULT_TOLERANCE

pytest_plugins = ["gloo_pools"]  # the session's gloo_workers

N_DEVICES = 4
MATRIX = [pytest.param(model, strategy, id=f"{model}-{strategy}",
                       marks=() if model == "tinycnn" else pytest.mark.heavy)
          for model in list_models() for strategy in list_strategies()]


@pytest.mark.parametrize(("model_name", "strategy"), MATRIX)
def test_gloo_on_4_devices_equals_the_model_and_the_local_backend(
        gloo_workers: Callable[[int], GlooWorkers], model_name: str, strategy: str) -> None:
    model = build_model(model_name)
    shape = model_input_shape(model_name)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, strategy, N_DEVICES, shape)
    local_out = pm(x)
    local_trace = pm.trace
    out, trace = gloo_workers(N_DEVICES).run(pm.plan, pm.graph, x, timeout_s=900)
    atol = DEFAULT_TOLERANCE * float(ref.abs().max())
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)
    torch.testing.assert_close(out, local_out, rtol=0, atol=atol)
    assert trace.device_stats() == pm.plan.device_stats() == local_trace.device_stats()
