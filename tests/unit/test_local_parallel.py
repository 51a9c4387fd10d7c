"""The local backend runs the devices at the same time (``parallel=True``, the default), within
the threads torch may use, and measures exactly what running the steps one after another
(``parallel=False``) measures."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from pytest_edgeenergy import PartitionedModel, build_model, model_input_shape, partition
from pytest_edgeenergy.backends import local
from pytest_edgeenergy.backends import threads as threads_module
from pytest_edgeenergy.backends.local import Executor, PlanExecutionError, run_local
from pytest_edgeenergy.backends.threads import _Dependencies, memory_events, thread_shares
from pytest_edgeenergy.plan import Task

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]


@pytest.fixture
def threads() -> Iterator[None]:
    """Restore torch's thread count after a test that sets it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("budget", [1, 2])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_devices_in_parallel_measure_the_trace_of_the_steps_one_after_another(
        strategy: str, budget: int, threads: None) -> None:
    torch.set_num_threads(budget)
    model = build_model("mobilenet_v2")
    x = torch.randn(model_input_shape("mobilenet_v2"))
    pm = partition(model, strategy, 3, x.shape)
    together, trace = run_local(pm.plan, pm.graph, x, parallel=True)
    in_turn, expected = run_local(pm.plan, pm.graph, x, parallel=False)
    assert trace.device_stats() == expected.device_stats()
    assert trace.device_stats() == pm.plan.device_stats()
    torch.testing.assert_close(together, in_turn)
    assert torch.get_num_threads() == budget  # the workers' settings do not leak


def _tiny(strategy: str) -> tuple[PartitionedModel, Tensor]:
    """tinycnn partitioned over two devices by ``strategy``, and an input for it."""
    x = torch.randn(model_input_shape("tinycnn"))
    return partition(build_model("tinycnn"), strategy, 2, x.shape), x


def _task_intervals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float, float]]:
    """Make every task take 20 ms more (a sleep, which releases the GIL as kernels do) and
    record (device, start, end) of each."""
    intervals: list[tuple[int, float, float]] = []
    lock = threading.Lock()
    run_task = Executor.run_task

    def slow(self: Executor, task: Task) -> None:
        start = time.perf_counter()
        time.sleep(0.02)
        run_task(self, task)
        with lock:
            intervals.append((task.device, start, time.perf_counter()))

    monkeypatch.setattr(local.Executor, "run_task", slow)
    return intervals


def _overlapping(intervals: list[tuple[int, float, float]]) -> int:
    """Pairs of tasks of different devices that ran at the same time."""
    return sum(1 for i, (d, a, b) in enumerate(intervals) for e, c, f in intervals[i + 1:]
               if d != e and a < f and c < b)


def test_tasks_of_different_devices_run_at_the_same_time_when_threads_allow(
        monkeypatch: pytest.MonkeyPatch, threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("spatial")
    intervals = _task_intervals(monkeypatch)
    run_local(pm.plan, pm.graph, x, parallel=True)
    assert _overlapping(intervals) > 0


def test_one_thread_runs_one_task_at_a_time(monkeypatch: pytest.MonkeyPatch,
                                            threads: None) -> None:
    torch.set_num_threads(1)
    pm, x = _tiny("spatial")
    intervals = _task_intervals(monkeypatch)
    run_local(pm.plan, pm.graph, x, parallel=True)
    assert len(intervals) == sum(isinstance(s, Task) for s in pm.plan.steps)
    assert _overlapping(intervals) == 0


def test_a_layer_no_other_device_computes_gets_every_thread() -> None:
    model = build_model("tinycnn")
    plan = partition(model, "layer", 2, model_input_shape("tinycnn")).plan
    assert set(thread_shares(plan, 4).values()) == {4}
    spatial = partition(model, "spatial", 2, model_input_shape("tinycnn")).plan
    shares = thread_shares(spatial, 4)
    split = {s.step for s in spatial.steps if isinstance(s, Task)
             and sum(isinstance(t, Task) and t.layer == s.layer for t in spatial.steps) == 2}
    assert split and all(shares[s] == 2 for s in split)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_task_takes_its_thread_share_and_a_transfer_or_a_free_takes_none(
        strategy: str) -> None:
    plan = partition(build_model("tinycnn"), strategy, 3, model_input_shape("tinycnn")).plan
    shares = thread_shares(plan, 4)
    deps = _Dependencies.of(plan)
    assert deps.threads(4) == [shares.get(s.step, 0) for s in plan.steps] + [0] * len(deps.frees)


def _position(plan_steps: int, frees: tuple[tuple[int, int], ...], event: int) -> float:
    """Where an event lies in the plan's order: a free event just after its step."""
    return event if event < plan_steps else frees[event - plan_steps][0] + 0.5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_task_receive_and_free_is_among_its_devices_memory_events(strategy: str) -> None:
    model = build_model("tinycnn")
    plan = partition(model, strategy, 3, model_input_shape("tinycnn")).plan
    chains, frees = memory_events(plan)
    base = len(plan.steps)
    for s in plan.steps:
        own = s.device if isinstance(s, Task) else s.dst
        assert s.step in chains[own]
        for pid in plan.frees[s.step]:
            owner = plan.pieces[pid].device
            event = s.step if owner == own else base + frees.index((s.step, owner))
            assert event in chains[owner]
    assert frees  # transfers free their senders' pieces: events of their own
    assert all(not isinstance(plan.steps[step], Task) for step, _ in frees)
    for chain in chains.values():
        positions = [_position(base, frees, e) for e in chain]
        assert positions == sorted(positions)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_step_waits_for_the_pieces_it_reads_and_a_free_for_every_reader(strategy: str) -> None:
    plan = partition(build_model("tinycnn"), strategy, 3, model_input_shape("tinycnn")).plan
    deps = _Dependencies.of(plan)
    base = len(plan.steps)
    events = sorted(range(len(deps.successors)),
                    key=lambda e: _position(base, deps.frees, e))
    before: list[set[int]] = [set() for _ in deps.successors]  # every event one must follow
    for e in events:
        for nxt in deps.successors[e]:
            # the plan's order is one the dependencies allow
            assert _position(base, deps.frees, nxt) > _position(base, deps.frees, e)
            before[nxt] |= before[e] | {e}
    made = {p.id: p.step for p in plan.pieces}
    readers: dict[int, set[int]] = {}
    for s in plan.steps:
        reads = [p for r in s.reads for p in r] if isinstance(s, Task) else [s.src_piece]
        for pid in reads:
            readers.setdefault(pid, set()).add(s.step)
            assert made[pid] < 0 or made[pid] in before[s.step]
    for s in plan.steps:
        own = s.device if isinstance(s, Task) else s.dst
        for pid in plan.frees[s.step]:
            owner = plan.pieces[pid].device
            event = s.step if owner == own else base + deps.frees.index((s.step, owner))
            assert readers.get(pid, set()) - {event} <= before[event]
    assert sum(deps.predecessors) == sum(len(n) for n in deps.successors)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_send_waits_for_its_piece_and_its_receiver_alone(strategy: str) -> None:
    plan = partition(build_model("tinycnn"), strategy, 3, model_input_shape("tinycnn")).plan
    deps = _Dependencies.of(plan)
    chains, _ = memory_events(plan)
    predecessors: list[set[int]] = [set() for _ in deps.successors]
    for event, successors in enumerate(deps.successors):
        for nxt in successors:
            predecessors[nxt].add(event)
    made = {p.id: p.step for p in plan.pieces}
    last_reads = 0
    for t in plan.transfers:
        chain = chains[t.dst]
        i = chain.index(t.step)
        # not the sender's steps since the piece was made, even when the send frees the piece
        expected = {made[t.src_piece]} - {-1} | set(chain[i - 1:i])
        assert predecessors[t.step] == expected
        last_reads += bool(plan.frees[t.step])
    assert last_reads  # some sends are their piece's last use


def test_a_step_that_fails_in_a_worker_raises_its_own_error_and_stops_the_others(
        threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("output-channel")
    good = pm.plan
    expected, _ = run_local(good, pm.graph, x, parallel=True)  # the workers exist from here
    i, task = next((i, s) for i, s in enumerate(good.steps)
                   if isinstance(s, Task) and s.device == 1)
    bad = dataclasses.replace(good, steps=list(good.steps))
    bad.steps[i] = dataclasses.replace(task, layer="no_such_layer")
    before = threading.active_count()
    with pytest.raises(PlanExecutionError, match=rf"step {i} on device 1 names layer "
                                                 r"'no_such_layer'"):
        run_local(bad, pm.graph, x, parallel=True)
    assert threading.active_count() == before  # no worker started, none left waiting
    again, _ = run_local(good, pm.graph, x, parallel=True)  # every worker free again
    torch.testing.assert_close(again, expected)


def _task_threads(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Record the identity of every thread that runs a task."""
    seen: set[int] = set()
    run_task = Executor.run_task

    def recorded(self: Executor, task: Task) -> None:
        seen.add(threading.get_ident())
        run_task(self, task)

    monkeypatch.setattr(local.Executor, "run_task", recorded)
    return seen


def _workers() -> set[int]:
    return {t.ident for t in threading.enumerate()
            if t.name.startswith("edge-worker") and t.ident is not None}


def test_the_worker_threads_live_across_runs(monkeypatch: pytest.MonkeyPatch,
                                             threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("spatial")
    seen = _task_threads(monkeypatch)
    run_local(pm.plan, pm.graph, x, parallel=True)
    workers = _workers()
    for _ in range(3):
        run_local(pm.plan, pm.graph, x, parallel=True)
    assert seen and seen <= workers  # every task ran on a worker, never on the caller's thread
    assert _workers() == workers  # the same threads again, none started for the later runs


def test_with_one_thread_the_steps_run_in_turn_on_the_callers_thread(
        monkeypatch: pytest.MonkeyPatch, threads: None) -> None:
    torch.set_num_threads(1)
    pm, x = _tiny("output-channel")
    seen = _task_threads(monkeypatch)
    run_local(pm.plan, pm.graph, x, parallel=True)
    assert seen == {threading.get_ident()}


def test_a_plan_whose_every_layer_one_device_computes_runs_in_turn_on_the_callers_thread(
        monkeypatch: pytest.MonkeyPatch, threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("layer")
    seen = _task_threads(monkeypatch)
    run_local(pm.plan, pm.graph, x)
    assert seen == {threading.get_ident()}


def test_the_devices_run_at_the_same_time_by_default(monkeypatch: pytest.MonkeyPatch,
                                                      threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("output-channel")
    seen = _task_threads(monkeypatch)
    pm(x)
    assert seen and threading.get_ident() not in seen


def test_a_partitioned_model_runs_its_steps_in_turn_when_asked(
        monkeypatch: pytest.MonkeyPatch, threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("output-channel")
    pm.parallel = False
    seen = _task_threads(monkeypatch)
    pm(x)
    assert seen == {threading.get_ident()}
    assert pm.trace.device_stats() == pm.plan.device_stats()


def test_a_transfer_hands_over_the_senders_values_without_a_copy() -> None:
    pm, x = _tiny("output-channel")
    ex = Executor(pm.plan, pm.graph, range(2))
    ex.hold_input(x)
    with torch.no_grad():
        for step in pm.plan.steps:
            if isinstance(step, Task):
                ex.run_task(step)
                continue
            ex.move(step)
            sender = ex.store[step.src_piece]
            held = ex.store[step.piece]
            torch.testing.assert_close(held, ex.region(step), rtol=0, atol=0)
            assert held.untyped_storage().data_ptr() == sender.untyped_storage().data_ptr()
            break
        else:
            pytest.fail("the plan has no transfer")


def _assembled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Tensor, int]]:
    """Record every tensor a task's input assembly makes (a copy or a concatenation), with its
    version counter when made."""
    made: list[tuple[Tensor, int]] = []
    run = local._Gather.run

    def recorded(self: local._Gather, store: dict[int, Tensor], batch: int) -> Tensor:
        t = run(self, store, batch)
        if self.view is None:
            made.append((t, t._version))
        return t

    monkeypatch.setattr(local._Gather, "run", recorded)
    return made


@pytest.mark.parametrize("parallel", [False, True])
def test_an_input_several_devices_assemble_alike_is_assembled_once_and_never_written(
        monkeypatch: pytest.MonkeyPatch, threads: None, parallel: bool) -> None:
    torch.set_num_threads(2)
    model = build_model("resnet18")
    x = torch.randn(1, 3, 64, 64)
    pm = partition(model, "output-channel", 3, x.shape)
    expected, expected_trace = run_local(pm.plan, pm.graph, x, parallel=False)
    made = _assembled(monkeypatch)
    ex = Executor(pm.plan, pm.graph, range(3))  # no sharing: every device assembles its own
    ex.hold_input(x)
    ex.run_steps()
    ex.output()
    alone = len(made)
    made.clear()
    prepared: dict[int, object] = {}
    out, trace = run_local(pm.plan, pm.graph, x, prepared, parallel=parallel)  # shares
    shares = next(v for v in prepared.values() if isinstance(v, local._SharedReads))
    # each all-gather's full input, which every device assembled, is assembled once
    assert 3 in shares.reads
    assert len(made) == alone - sum(n - 1 for n in shares.reads)
    assert all(t._version == version for t, version in made)  # no step wrote one
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert trace.device_stats() == expected_trace.device_stats() == pm.plan.device_stats()


def test_reads_are_shared_only_by_an_executor_that_plays_every_device() -> None:
    pm, _ = _tiny("output-channel")
    with pytest.raises(ValueError, match="every device"):
        Executor(pm.plan, pm.graph, (0,), share_reads=True)


_FAULTS_SCRIPT = """
import ctypes, resource, torch
from pytest_edgeenergy.backends import local

def faults():
    # four 16 MiB blocks live at once, freed, then made again: fresh pages unless kept
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        blocks = [torch.ones(4 << 20) for _ in range(4)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

# glibc's default trims the heap depending on what else lies on it; make it trim for sure
mallopt = ctypes.CDLL(None).mallopt
mallopt(local._M_MMAP_THRESHOLD, local.MMAP_ABOVE_BYTES)
mallopt(local._M_TRIM_THRESHOLD, 128 << 10)
faults()
alone = faults()
kept = local.keep_freed_memory()
faults()
print(alone, faults(), kept)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_the_local_backend_keeps_the_memory_it_frees_mapped_for_the_next_call() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for _ in range(5):  # now and then the heap's layout leaves nothing to give back: again
        res = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], capture_output=True,
                             text=True, check=True, timeout=120, env=env)
        alone, kept_faults, kept = res.stdout.split()
        assert kept == "True"
        assert int(kept_faults) < 4096  # at most 16 MiB of the 192 MiB made again faulted in
        if int(alone) > 4 * 4096:  # the pages given back: 64 MiB faulted in again, and more
            break
    else:
        pytest.fail("glibc never gave the freed pages back, even with its trimming forced")


def test_a_transfer_is_carried_out_as_soon_as_it_is_ready_not_queued_for_a_worker(
        monkeypatch: pytest.MonkeyPatch, threads: None) -> None:
    torch.set_num_threads(2)
    pm, x = _tiny("output-channel")
    deps = _Dependencies.of(pm.plan)
    taken: list[int] = []
    take = threads_module._Run._take

    def recorded(self: threads_module._Run) -> int | None:
        step = take(self)
        if step is not None:
            taken.append(step)
        return step

    monkeypatch.setattr(threads_module._Run, "_take", recorded)
    out, trace = run_local(pm.plan, pm.graph, x, parallel=True)
    transfers = [s.step for s in pm.plan.steps if not isinstance(s, Task)]
    assert transfers  # the plan has some, and only those ready from the start were queued
    queued = [s for s in taken if s in transfers]
    assert all(deps.predecessors[s] == 0 for s in queued)
    assert len(queued) < len(transfers)
    assert trace.device_stats() == pm.plan.device_stats()
    torch.testing.assert_close(out, run_local(pm.plan, pm.graph, x, parallel=False)[0])
