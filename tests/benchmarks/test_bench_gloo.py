"""Benchmarks of the gloo backend against the local one (pytest-benchmark): figures to report,
not timed assertions. Every test here is heavy (tests/benchmarks/).

VGG-16 and ResNet-50 at 224x224 on 2 and 4 devices, output-channel and spatial. The
benchmarked call is one inference on already started workers that already hold the layer
graph (a session's pool); ``extra_info`` adds the local backend's best time and the ratio
(target: gloo at most 1.5x local), the same inference with overlap switched off (the blocking
schedule) and what overlap gains, the pool's start-up (once per device count) and the first
run (which ships the graph through shared memory). On one host the workers share its cores
(``threads_per_worker``: 1 on this 2-core machine), so local is also timed with one thread.

Run: ``OMP_NUM_THREADS=1 pytest tests/benchmarks/test_bench_gloo.py -m heavy
--benchmark-columns=min,rounds``; the figures are in ``--benchmark-json``'s ``extra_info``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from bench_timing import best_of

from pytest_edgeenergy import build_model, model_input_shape, partition
from pytest_edgeenergy.backends import GlooWorkers

ROUNDS = 2


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[int, tuple[GlooWorkers, float]]]:
    """Started workers per device count, with their start-up time (the session pool's cost)."""
    started: dict[int, tuple[GlooWorkers, float]] = {}
    yield started
    for workers, _ in started.values():
        workers.close()


def _pool(pools: dict[int, tuple[GlooWorkers, float]], n: int) -> tuple[GlooWorkers, float]:
    if n not in pools:
        t0 = time.perf_counter()
        workers = GlooWorkers(n, timeout_s=600)
        pools[n] = (workers, time.perf_counter() - t0)
    return pools[n]


@pytest.mark.parametrize("n_devices", [2, 4])
@pytest.mark.parametrize("strategy", ["output-channel", "spatial"])
@pytest.mark.parametrize("model_name", ["vgg16", "resnet50"])
def test_gloo_against_local_wall_time(benchmark: Any, pools: dict[int, tuple[GlooWorkers, float]],
                                      model_name: str, strategy: str, n_devices: int) -> None:
    model = build_model(model_name)
    x = torch.randn(model_input_shape(model_name), generator=torch.Generator().manual_seed(0))
    pm = partition(model, strategy, n_devices, x.shape)
    local_out = pm(x)  # warm-up
    local_s = best_of(lambda: pm(x), ROUNDS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local_1_thread_s = best_of(lambda: pm(x), ROUNDS)
    finally:
        torch.set_num_threads(threads)
    workers, startup_s = _pool(pools, n_devices)
    workers.overlap = True
    t0 = time.perf_counter()
    workers.run(pm.plan, pm.graph, x)
    first_run_s = time.perf_counter() - t0
    out, trace = benchmark.pedantic(workers.run, args=(pm.plan, pm.graph, x), rounds=ROUNDS,
                                    warmup_rounds=0)
    gloo_s = benchmark.stats.stats.min if benchmark.stats else first_run_s
    workers.overlap = False
    try:
        blocking_s = best_of(lambda: workers.run(pm.plan, pm.graph, x), ROUNDS)
    finally:
        workers.overlap = True
    atol = 1e-5 * max(1.0, float(local_out.abs().max()))
    torch.testing.assert_close(out, local_out, rtol=0, atol=atol)
    assert trace.device_stats() == pm.plan.device_stats()
    benchmark.extra_info.update({
        "local_s": local_s,
        "local_1_thread_s": local_1_thread_s,
        "gloo_s": gloo_s,
        "gloo_to_local": gloo_s / local_s,
        "gloo_to_local_1_thread": gloo_s / local_1_thread_s,
        "gloo_blocking_s": blocking_s,
        "overlap_gain": blocking_s / gloo_s,
        "measured_makespan_s": trace.wall_s,
        "pool_startup_s": startup_s,
        "first_run_s": first_run_s,
        "threads_per_worker": workers.threads_per_worker,
        "local_threads": threads,
        "comm_bytes": pm.plan.comm_bytes,
        "messages": len(pm.plan.transfers),
    })
