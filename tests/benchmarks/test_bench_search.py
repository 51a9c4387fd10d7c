"""Benchmarks of the ``search`` strategy (heavy, opt-in): energy against the best classic
strategy, and how long the search takes. Figures to report, not timed assertions.

Run ``OMP_NUM_THREADS=1 pytest tests/benchmarks/test_bench_search.py -m heavy -s``: one line
per case. Targets from the search issue: max per-device energy at least 15 % below the best
classic strategy on resnet101 / 4 x rpi4 and on the heterogeneous cluster; resnet101 on 4
devices searched in under 10 s. The only assertion is the one the search guarantees: never
worse than the best classic strategy.
"""

from __future__ import annotations

import time

import pytest

from pytest_edgeenergy import (
    Cluster,
    build_graph,
    build_model,
    estimate_energy,
    get_strategy,
    model_input_shape,
)
from pytest_edgeenergy.strategies.search import SearchStrategy
from pytest_edgeenergy.strategies.search.memo import MEMO

MODELS = ["vgg19", "resnet101", "yolov2", "mobilenet_v2"]
CLUSTERS = ["4xrpi4", "8xrpi4", "rpi4,rpi4,jetson-nano-10w,rpi3bplus"]
CLASSIC = ["layer", "spatial", "output-channel", "input-channel"]


@pytest.mark.heavy
@pytest.mark.parametrize("spec", CLUSTERS)
@pytest.mark.parametrize("model", MODELS)
def test_search_against_the_best_classic_strategy(model: str, spec: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.parse(spec)
    graph = build_graph(build_model(model), model_input_shape(model))
    classic = {name: estimate_energy(get_strategy(name).plan(graph, cluster), cluster)
               for name in CLASSIC}
    best_name = min(classic, key=lambda k: classic[k].max_device_j)
    best = classic[best_name]
    strategy = SearchStrategy()
    found = estimate_energy(strategy.plan(graph, cluster), cluster)
    report = strategy.last
    assert report is not None
    assert found.max_device_j <= best.max_device_j * (1 + 1e-12)
    gain = 100.0 * (best.max_device_j - found.max_device_j) / best.max_device_j
    with capsys.disabled():
        print(f"\nSEARCH | {model} | {spec} | {found.max_device_j:.4f} | {best_name} "
              f"{best.max_device_j:.4f} | {gain:.1f} % | makespan {found.makespan_s:.4f} vs "
              f"{best.makespan_s:.4f} s | {len(report.segments)} segments | "
              f"{report.candidates} candidates | {report.time_s:.1f} s wall, "
              f"{report.cpu_s:.1f} s CPU")


@pytest.mark.heavy
def test_search_time_for_resnet101_on_4_devices(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.parse("4xrpi4")
    graph = build_graph(build_model("resnet101"), model_input_shape("resnet101"))
    strategy = SearchStrategy()
    MEMO.clear()  # time a search, not the rebuild of one remembered from an earlier test
    wall, cpu = time.perf_counter(), time.process_time()
    strategy.plan(graph, cluster)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert strategy.last is not None and strategy.last.candidates > 0
    assert not strategy.last.reused
    with capsys.disabled():
        print(f"\nSEARCH TIME | resnet101 | 4xrpi4 | {wall:.2f} s wall | {cpu:.2f} s CPU | "
              f"{strategy.last.candidates} candidates (target < 10 s)")
