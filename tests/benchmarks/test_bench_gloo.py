"""Benchmark of the gloo backend against the local one (pytest-benchmark): figures to report,
not timed assertions.

VGG-16 at 224x224 on 4 devices. The benchmarked call is one inference on already started
workers that already hold the layer graph; ``extra_info`` adds the local backend's best time,
the ratio, the workers' start-up and the first run (which ships the 553 MB graph through shared
memory), i.e. what a one-shot ``run_gloo`` costs. On one host the 4 workers share its cores
(``threads_per_worker``, 1 on 2 cores); local is timed with torch's default thread count and
with one thread, since on a small shared host intra-op threads can cost more than they give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from pytest_edgeenergy import build_model, model_input_shape, partition
from pytest_edgeenergy.backends import GlooWorkers

N_DEVICES = 4


def _best_of(fn: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("strategy", ["output-channel", "spatial"])
def test_gloo_against_local_wall_time_of_vgg16_on_4_devices(benchmark: Any,
                                                             strategy: str) -> None:
    model = build_model("vgg16")
    x = torch.randn(model_input_shape("vgg16"), generator=torch.Generator().manual_seed(0))
    pm = partition(model, strategy, N_DEVICES, x.shape)
    local_out = pm(x)  # warm-up
    local_s = _best_of(lambda: pm(x))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local_1_thread_s = _best_of(lambda: pm(x))
    finally:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    with GlooWorkers(N_DEVICES) as workers:
        startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        workers.run(pm.plan, pm.graph, x)
        first_run_s = time.perf_counter() - t0
        out, trace = benchmark.pedantic(workers.run, args=(pm.plan, pm.graph, x), rounds=3,
                                        warmup_rounds=0)
        threads_per_worker = workers.threads_per_worker
    gloo_s = benchmark.stats.stats.min if benchmark.stats else first_run_s
    atol = 1e-5 * max(1.0, float(local_out.abs().max()))
    torch.testing.assert_close(out, local_out, rtol=1e-4, atol=atol)
    assert trace.device_stats() == pm.plan.device_stats()
    benchmark.extra_info.update({
        "local_s": local_s,
        "local_1_thread_s": local_1_thread_s,
        "gloo_s": gloo_s,
        "gloo_to_local": gloo_s / local_s,
        "gloo_to_local_1_thread": gloo_s / local_1_thread_s,
        "startup_s": startup_s,
        "first_run_s": first_run_s,
        "one_shot_s": startup_s + first_run_s,
        "threads_per_worker": threads_per_worker,
        "local_threads": threads,
        "comm_bytes": pm.plan.comm_bytes,
        "messages": len(pm.plan.transfers),
    })
