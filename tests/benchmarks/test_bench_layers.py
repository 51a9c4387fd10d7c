"""Where a partitioned run's time goes (figures to report, not timed assertions).

At one thread the local backend runs the steps in turn, so a partitioned run takes the sum of
its tasks' times. The first cases time every task of ResNet-50 on 4 devices and the same layers
run whole (a one-device plan, through the same executor), and print the layers whose slices
cost most beyond their layer. The second time the tasks at two threads with the devices at the
same time, in wall and in CPU time, beside the run's wall time: how busy the workers are, and
how much slower two kernels at once run than one alone. ``docs/strategies.md`` quotes both.

Run ``pytest tests/benchmarks/test_bench_layers.py --heavy``; the tables print at the end.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import torch
from bench_timing import print_at_end, torch_threads
from torch import Tensor

from pytest_edgeenergy import PartitionedModel, build_model, model_input_shape, partition
from pytest_edgeenergy.backends import local
from pytest_edgeenergy.backends.local import run_local
from pytest_edgeenergy.plan import Task

MODEL = "resnet50"
DEVICES = 4
ROUNDS = 5
STRATEGIES = ["spatial", "output-channel", "input-channel"]


class _Timing(NamedTuple):
    """One task's wall and CPU time (its thread's) in one run."""

    task: Task
    wall_s: float
    cpu_s: float


class _TaskTimer:
    """Wraps the executor's ``run_task`` to time every task of the runs made inside it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.timings: list[_Timing] = []
        self._lock = threading.Lock()
        run_task = local.Executor.run_task

        def timed(executor: local.Executor, task: Task) -> None:
            wall, cpu = time.perf_counter(), time.thread_time()
            run_task(executor, task)
            timing = _Timing(task, time.perf_counter() - wall, time.thread_time() - cpu)
            with self._lock:
                self.timings.append(timing)

        monkeypatch.setattr(local.Executor, "run_task", timed)

    def runs(self, pm: PartitionedModel, x: Tensor, *,
             parallel: bool) -> tuple[list[tuple[float, list[_Timing]]], Tensor]:
        """``ROUNDS`` runs after one warm-up: each run's wall time and its tasks' timings, and
        the output."""
        graph = pm.graph  # the weight check of pm.graph once, not per run
        prepared: dict[int, object] = {}
        rounds: list[tuple[float, list[_Timing]]] = []
        self.timings = []  # the warm-up's, dropped
        out = run_local(pm.plan, graph, x, prepared, parallel=parallel)[0]
        for _ in range(ROUNDS):
            self.timings = []
            t0 = time.perf_counter()
            run_local(pm.plan, graph, x, prepared, parallel=parallel)
            rounds.append((time.perf_counter() - t0, self.timings))
        return rounds, out


def _wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fastest(rounds: list[tuple[float, list[_Timing]]]) -> tuple[float, list[_Timing]]:
    """The run with the shortest wall time."""
    return min(rounds, key=lambda r: r[0])


def _best_by_layer(rounds: list[tuple[float, list[_Timing]]]) -> dict[str, float]:
    """Per layer, the sum of its tasks' times, each task's the shortest of the runs."""
    best: dict[int, _Timing] = {}
    for _, timings in rounds:
        for t in timings:
            step = t.task.step
            if step not in best or t.wall_s < best[step].wall_s:
                best[step] = t
    totals: dict[str, float] = collections.defaultdict(float)
    for t in best.values():
        totals[t.task.layer] += t.wall_s
    return totals


@pytest.fixture(scope="module")
def resnet50() -> tuple[torch.nn.Module, Tensor]:
    torch.manual_seed(0)
    return build_model(MODEL), torch.randn(model_input_shape(MODEL))


@pytest.fixture
def timer(monkeypatch: pytest.MonkeyPatch) -> Iterator[_TaskTimer]:
    """A task timer, on one intra-op thread unless a test sets another count."""
    with torch_threads(1):
        yield _TaskTimer(monkeypatch)


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, list[str]]]:
    """Lines the cases measured, printed as sections at the end of the module."""
    sections: dict[str, list[str]] = {}
    yield sections
    if sections:
        print_at_end(request, lambda reporter: _write(reporter, sections))


def _write(reporter: Any, sections: dict[str, list[str]]) -> None:
    for title, lines in sections.items():
        reporter.ensure_newline()
        reporter.write_sep("-", title)
        for line in lines:
            reporter.write_line(line)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_layers_whose_slices_cost_most_beyond_their_layer_at_one_thread(
        strategy: str, resnet50: tuple[torch.nn.Module, Tensor], timer: _TaskTimer,
        report: dict[str, list[str]]) -> None:
    model, x = resnet50
    whole = partition(model, "layer", 1, x.shape)
    pm = partition(model, strategy, DEVICES, x.shape)
    whole_runs, _ = timer.runs(whole, x, parallel=False)
    part_runs, out = timer.runs(pm, x, parallel=False)
    with torch.no_grad():
        expected = model(x)
        forward_s = min(_wall(lambda: model(x)) for _ in range(ROUNDS))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert all(len(t) == len(pm.plan.tasks) for _, t in part_runs)
    assert all(len(t) == len(whole.plan.tasks) for _, t in whole_runs)
    whole_s, part_s = _fastest(whole_runs)[0], _fastest(part_runs)[0]
    per_whole, per_part = _best_by_layer(whole_runs), _best_by_layer(part_runs)
    assert per_part.keys() == per_whole.keys()  # every layer computed in both, none else
    excess = sorted(per_part, key=lambda k: per_part[k] - per_whole[k], reverse=True)
    lines = report.setdefault(
        f"{MODEL}, 4 devices, 1 thread: the slices' time against their layer's (best of "
        f"{ROUNDS})", [])
    lines.append(f"{strategy}: {part_s * 1e3:.1f} ms against {whole_s * 1e3:.1f} ms for the "
                 f"one-device plan ({part_s / whole_s:.2f}) and {forward_s * 1e3:.1f} ms for the "
                 f"model's forward; per layer, each task's best of the runs:")
    for name in excess[:8]:
        whole_ms, part_ms = per_whole[name] * 1e3, per_part[name] * 1e3
        lines.append(f"    {name:28}{whole_ms:8.2f} ms whole{part_ms:8.2f} ms in slices  "
                     f"+{part_ms - whole_ms:.2f}")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_how_busy_the_workers_are_with_the_devices_at_the_same_time(
        strategy: str, resnet50: tuple[torch.nn.Module, Tensor], timer: _TaskTimer,
        report: dict[str, list[str]]) -> None:
    pm = partition(resnet50[0], strategy, DEVICES, resnet50[1].shape)
    alone_runs, expected = timer.runs(pm, resnet50[1], parallel=False)  # one thread: in turn
    with torch_threads(2):
        together_runs, out = timer.runs(pm, resnet50[1], parallel=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    _, alone = _fastest(alone_runs)
    wall_s, together = _fastest(together_runs)
    assert len(together) == len(alone) == len(pm.plan.tasks)
    assert sorted(t.task.step for t in together) == [t.step for t in pm.plan.tasks]
    alone_s = sum(t.wall_s for t in alone)
    tasks_s = sum(t.wall_s for t in together)
    cpu_s = sum(t.cpu_s for t in together)
    lines = report.setdefault(
        f"{MODEL}, 4 devices, 2 threads, devices at the same time (best of {ROUNDS})", [
            f"{'strategy':16}{'wall':>9}{'tasks':>9}{'on CPU':>9}{'idle':>9}"
            f"{'tasks at 1 thread':>19}{'CPU / 1 thread':>16}"])
    lines.append(f"{strategy:16}{wall_s * 1e3:9.1f}{tasks_s * 1e3:9.1f}{cpu_s * 1e3:9.1f}"
                 f"{(2 * wall_s - tasks_s) * 1e3:9.1f}{alone_s * 1e3:19.1f}"
                 f"{cpu_s / alone_s:16.2f}")
