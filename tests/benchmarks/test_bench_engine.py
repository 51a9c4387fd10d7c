"""Benchmarks of the engine (pytest-benchmark): figures to report, not timed assertions.

Run ``pytest tests/benchmarks/test_bench_engine.py --heavy --benchmark-columns=min,mean,rounds``
to see them (``-k "resnet50 and 1threads"`` for a part); the inference-time cases end with a
table of partitioned / unpartitioned time per model, strategy and thread count, the steps in
turn beside the devices in parallel, with the load average. Targets from the engine issues:
partitioned / unpartitioned wall time <= 1.10 for every strategy on VGG-16 and ResNet-50 with 4
devices, at torch's default thread count and at one thread (spatial: plus its halo recompute
fraction); planning cost at most quadratic in the device count (ResNet-18 output-channel on 64
devices under 10 s); peak RSS of a partitioned VGG-16 run with N = 8 under 2x the unpartitioned
run's. On a small machine shared with other work, the default-thread figures swing with the
load: compare them only with figures taken at the same time (``time_ratio`` puts the
unpartitioned forward beside each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from bench_timing import best_of, print_at_end, torch_threads

from pytest_edgeenergy import build_model, list_models, model_input_shape, partition
from pytest_edgeenergy.backends.local import run_local
from pytest_edgeenergy.graph.ops import Conv

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
DEFAULT_THREADS = torch.get_num_threads()
ROUNDS = 9


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Time on one intra-op thread unless a test sets another count: on a small shared machine
    two threads collapse whenever another process takes a core."""
    with torch_threads(1):
        yield


_Row = tuple[str, str, int]  # model, strategy, threads


@pytest.fixture(scope="module")
def time_ratios(request: pytest.FixtureRequest) -> Iterator[dict[_Row, dict[str, float]]]:
    """The time ratios the inference-time cases measured, printed as one table at the end."""
    table: dict[_Row, dict[str, float]] = {}
    yield table
    if table:
        print_at_end(request, lambda reporter: _print_ratios(reporter, table))


def _print_ratios(reporter: Any, table: dict[_Row, dict[str, float]]) -> None:
    load = os.getloadavg()[0]
    reporter.ensure_newline()
    reporter.write_sep("-", f"partitioned / unpartitioned time, 4 devices, min of {ROUNDS} "
                            f"(load average {load:.2f} at the end)")
    reporter.write_line(f"{'model':10}{'strategy':16}{'threads':>8}{'in turn':>9}"
                        f"{'parallel':>10}{'target':>8}  load")
    for (name, strategy, threads), cells in sorted(table.items()):
        figures = "".join(f"{cells[mode]:>{width}.2f}" if mode in cells else " " * width
                          for mode, width in (("in-turn", 9), ("parallel", 10)))
        reporter.write_line(f"{name:10}{strategy:16}{threads:>8}{figures}"
                            f"{1.10 + cells['halo']:>8.2f}  {cells['load']:.2f}")
    reporter.write_line("target: 1.10, plus the halo recompute fraction for spatial; the "
                        "unpartitioned forward is timed before each round; 'parallel' "
                        "runs in turn on one thread, and for layer")


@pytest.mark.parametrize("parallel", [False, True], ids=["in-turn", "parallel"])
@pytest.mark.parametrize("threads", [DEFAULT_THREADS, 1], ids=lambda t: f"{t}threads")
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_partitioned_inference_time_against_the_unpartitioned_forward(
        benchmark: Any, name: str, strategy: str, threads: int, parallel: bool,
        time_ratios: dict[_Row, dict[str, float]]) -> None:
    torch.set_num_threads(threads)
    model = build_model(name)
    x = torch.randn(model_input_shape(name))
    pm = partition(model, strategy, 4, x.shape)
    # The backend alone: ``pm.graph`` checks the model's weights for changes on every access
    # (the weight watch of ``pm(x)``); that check is timed on its own as ``watch_s``.
    graph = pm.graph
    watch_s = best_of(lambda: pm.graph, 3)
    prepared: dict[int, object] = {}

    def run() -> torch.Tensor:
        return run_local(pm.plan, graph, x, prepared, parallel=parallel)[0]

    reference: list[float] = []

    def reference_round() -> None:
        """One unpartitioned forward before each round: the two are timed side by side, so a
        change of the machine's load reaches both."""
        with torch.no_grad():
            t0 = time.perf_counter()
            model(x)
            reference.append(time.perf_counter() - t0)

    out = benchmark.pedantic(run, setup=reference_round, rounds=ROUNDS, warmup_rounds=1)
    reference_s = min(reference[1:] or reference)  # the first was the warm-up's
    with torch.no_grad():
        assert out.shape == model(x).shape
    partitioned_s = benchmark.stats.stats.min if benchmark.stats else best_of(run, 3)
    halo = pm.plan.redundant_macs / pm.plan.graph_macs
    benchmark.extra_info.update({
        "threads": threads,
        "parallel": parallel,
        "reference_s": reference_s,
        "time_ratio": partitioned_s / reference_s,
        "halo_recompute_fraction": halo,
        "watch_s": watch_s,
    })
    cells = time_ratios.setdefault((name, strategy, threads), {})
    cells["in-turn" if not parallel else "parallel"] = partitioned_s / reference_s
    cells.update(halo=halo, load=os.getloadavg()[0])


@pytest.mark.parametrize("devices", [16, 32, 64])
def test_planning_time_grows_at_most_as_the_square_of_the_device_count(
        benchmark: Any, devices: int) -> None:
    model = build_model("resnet18")
    shape = model_input_shape("resnet18")
    pm = benchmark.pedantic(partition, args=(model, "output-channel", devices, shape),
                            rounds=1, warmup_rounds=0)
    benchmark.extra_info.update({"steps": len(pm.plan.steps)})
    assert pm.plan.total_macs == pm.plan.graph_macs


@pytest.mark.parametrize("name", list_models())
def test_planning_time_of_every_zoo_model(benchmark: Any, name: str) -> None:
    model = build_model(name)
    shape = model_input_shape(name)
    pm = benchmark.pedantic(partition, args=(model, "output-channel", 4, shape), rounds=3,
                            warmup_rounds=0)
    assert pm.plan.total_macs == pm.plan.graph_macs


# Peak RSS of the inference alone: the model is built (and partitioned) first, then the
# kernel's high-water mark is reset (Linux /proc/self/clear_refs, "5") and read after the run
# (VmHWM). Weights stay resident, so they are in both figures.
_RSS_SCRIPT = """
import json, sys, torch
from pytest_edgeenergy import build_model, model_input_shape, partition
model = build_model("vgg16")
x = torch.randn(model_input_shape("vgg16"))
run = model if sys.argv[1] == "reference" else partition(model, sys.argv[1], 8, x.shape)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
with torch.no_grad():
    y = run(x)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({"peak_rss_kib": int(hwm.split()[1])}))
"""


def _peak_rss_kib(mode: str) -> int:
    res = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, mode], capture_output=True,
                         text=True, check=True, timeout=600)
    return int(json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_kib"])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_peak_memory_of_a_partitioned_vgg16_on_8_devices(benchmark: Any, strategy: str) -> None:
    reference = _peak_rss_kib("reference")
    partitioned = benchmark.pedantic(_peak_rss_kib, args=(strategy,), rounds=1, warmup_rounds=0)
    benchmark.extra_info.update({"reference_peak_rss_kib": reference,
                                 "partitioned_peak_rss_kib": partitioned,
                                 "rss_ratio": partitioned / reference})
    # Both processes hold VGG-16's weights at least: a lower bound the measurement must meet.
    weight_bytes = sum(p.numel() * p.element_size() for p in build_model("vgg16").parameters())
    assert min(reference, partitioned) * 1024 >= weight_bytes


def test_weights_are_the_models_own_tensors_not_copies() -> None:
    model = build_model("vgg16")  # no BatchNorm: nothing is folded, nothing may be copied
    pm = partition(model, "output-channel", 8, model_input_shape("vgg16"))
    params = {p.data_ptr() for p in model.parameters()}
    convs = [layer.op for layer in pm.graph.layers if isinstance(layer.op, Conv)]
    assert convs and all(op.weight.data_ptr() in params for op in convs)
