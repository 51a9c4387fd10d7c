"""Per-rank metering under the gloo backend: ranks measure in step, each its own share.

The lockstep (one window length, windows repeated until every rank's series met the rule) is
checked on threads with an in-memory comm and ledger meters on virtual clocks; the rows and
the report on hand-made shares; then (subprocesses) real gloo workers on 127.0.0.1 measure
with the fake meter of ``fake_share_meter.py``, each process counting its own share.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from ledger_meter import FakeMachine, LedgerMeter
from remote_rank import remote_rank

from pytest_edgeenergy import PartitionError, build_model, model_input_shape, partition
from pytest_edgeenergy.backends.gloo import GlooWorkers
from pytest_edgeenergy.backends.remote import RemoteWorkers
from pytest_edgeenergy.meters import (
    MeasuredEnergy,
    StopRule,
    measure_energy,
)
from pytest_edgeenergy.meters.compare import MeterStatus, measured_section, rank_rows
from pytest_edgeenergy.meters.metering import Metering
from pytest_edgeenergy.meters.ranks import RankAgreement, ShareMeasurement, measure_share
from pytest_edgeenergy.meters.registry import METER_MODULES_ENV, MeterSpecError, get_meter
from pytest_edgeenergy.partitioned import PartitionedModel

HERE = Path(__file__).parent
FAKE = "fake_share_meter"


class _Done:
    def wait(self, timeout: timedelta | None = None) -> bool:
        return True


class _Pending:
    def __init__(self, box: queue.Queue[torch.Tensor], into: torch.Tensor) -> None:
        self.box, self.into = box, into

    def wait(self, timeout: timedelta | None = None) -> bool:
        self.into.copy_(self.box.get(timeout=10))
        return True


class MemoryComm:
    """``isend``/``irecv`` between threads (a queue per source, destination and tag)."""

    def __init__(self, rank: int, boxes: dict[tuple[int, int, int], queue.Queue[Any]]) -> None:
        self.rank, self.boxes = rank, boxes
        self.lock = threading.Lock()

    def _box(self, key: tuple[int, int, int]) -> queue.Queue[torch.Tensor]:
        with self.lock:
            return self.boxes.setdefault(key, queue.Queue())

    def isend(self, tensor: torch.Tensor, dst: int, tag: int) -> _Done:
        self._box((self.rank, dst, tag)).put(tensor.clone())
        return _Done()

    def irecv(self, tensor: torch.Tensor, src: int, tag: int) -> _Pending:
        return _Pending(self._box((src, self.rank, tag)), tensor)


def in_step(ledgers: list[FakeMachine], rule: StopRule) -> list[MeasuredEnergy]:
    """Every ledger measured on its own thread, the threads agreeing as ranks do."""
    boxes: dict[tuple[int, int, int], queue.Queue[Any]] = {}
    out: dict[int, MeasuredEnergy] = {}

    def rank(r: int) -> None:
        agreement = RankAgreement(MemoryComm(r, boxes), r, len(ledgers), 10.0)
        ledger = ledgers[r]
        out[r] = measure_energy(ledger.run, LedgerMeter(ledger), rule, clock=ledger.clock,
                                sleep=ledger.sleep, together=agreement)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(len(ledgers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return [out[r] for r in range(len(ledgers))]


def test_ranks_in_step_share_one_window_length_and_each_measures_its_own_energy() -> None:
    fast = FakeMachine(idle_w=2.0, active_w=6.0, run_s=0.01)  # 0.04 J above idle per run
    slow = FakeMachine(idle_w=1.0, active_w=3.0, run_s=0.04)  # 0.08 J above idle per run
    fast_m, slow_m = in_step([fast, slow], StopRule(min_window_s=0.2))
    # the slowest run sets the window: 0.2 s / 0.04 s = 5 runs for both ranks
    assert fast_m.runs_per_window == slow_m.runs_per_window == 5
    assert fast_m.net_j == pytest.approx(0.04) and slow_m.net_j == pytest.approx(0.08)
    assert fast_m.idle_w == pytest.approx(2.0) and slow_m.idle_w == pytest.approx(1.0)
    assert len(fast_m.active.values) == len(slow_m.active.values) == 3
    assert fast_m.stable and slow_m.stable


def test_a_noisy_rank_keeps_every_rank_measuring_until_it_is_stable() -> None:
    steady = FakeMachine(idle_w=2.0, active_w=6.0, run_s=0.01)
    noisy = FakeMachine(idle_w=2.0, active_w=6.0, run_s=0.01, jitter=(3.0,) * 20 + (-3.0,) * 20)
    steady_m, noisy_m = in_step([steady, noisy], StopRule(min_window_s=0.2, target_rse=0.05))
    alone = measure_energy(steady.run, LedgerMeter(steady), StopRule(min_window_s=0.2),
                           clock=steady.clock, sleep=steady.sleep)
    assert len(alone.active.values) == 3  # steady alone would have stopped at the minimum
    assert len(steady_m.active.values) == len(noisy_m.active.values) > 3
    assert steady_m.stable and steady_m.net_j == pytest.approx(0.04)
    assert noisy_m.net_j == pytest.approx(0.04, rel=0.1)


def test_a_rank_without_a_meter_runs_with_the_others_and_says_why(tmp_path: Path) -> None:
    boxes: dict[tuple[int, int, int], queue.Queue[Any]] = {}
    runs = [0, 0]
    spec = f"rapl:root={tmp_path / 'none'}"
    got: dict[int, ShareMeasurement] = {}

    def rank(r: int) -> None:
        def run() -> None:
            runs[r] += 1
        got[r] = measure_share(run, spec, StopRule(min_window_s=0.01), MemoryComm(r, boxes), r,
                               2, 10.0, host="h")

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert runs == [0, 0]  # nobody could measure: no window was run
    for r in (0, 1):
        assert got[r].measured is None and got[r].device == r and got[r].host == "h"
        assert got[r].reason.startswith(f"RAPL: no {tmp_path / 'none'}")


def share(device: int, host: str, net_j: float | None, reason: str = "") -> ShareMeasurement:
    if net_j is None:
        return ShareMeasurement(device, host, None, reason)
    ledger = FakeMachine(idle_w=1.0, active_w=1.0 + net_j / 0.01, run_s=0.01)
    measured = measure_energy(ledger.run, LedgerMeter(ledger), StopRule(min_window_s=0.1),
                              clock=ledger.clock, sleep=ledger.sleep)
    return ShareMeasurement(device, host, measured)


def test_each_device_gets_its_row_beside_its_own_estimate_or_the_reason_it_was_not_measured(
) -> None:
    rows = rank_rows("m|layer|3xrpi4|1x3x8x8|board", [(0.02, 0.01), (0.01, 0.01), (0.5, 0.0)],
                     [share(1, "pi-b", 0.04), share(0, "pi-a", 0.06),
                      share(2, "pi-c", None, "ina219: no INA219 answers at /dev/i2c-1")])
    assert [r.device for r in rows] == ["device 0 (rank 0, host pi-a)",
                                        "device 1 (rank 1, host pi-b)",
                                        "device 2 (rank 2, host pi-c)"]
    assert [r.estimated_j for r in rows] == pytest.approx([0.03, 0.02, 0.5])
    assert rows[0].measured_j == pytest.approx(0.06) and rows[0].ratio == pytest.approx(2.0)
    assert rows[1].measured_j == pytest.approx(0.04) and rows[1].ratio == pytest.approx(2.0)
    assert rows[2].measured_j is None and rows[2].ratio is None
    assert rows[2].reason == "ina219: no INA219 answers at /dev/i2c-1"
    text = measured_section(MeterStatus("ina219", True, "INA219 at /dev/i2c-1"), rows)
    lines = text.splitlines()
    assert lines[3].split()[-6:] == ["0.06", "0.03", "2", "1", "3", "0.0%"]
    assert lines[5].split()[-6:] == ["unavailable", "0.5", "-", "-", "-", "-"]
    assert "With the gloo backend each rank measured the machine it runs on" in text
    assert ("Not measured: m|layer|3xrpi4|1x3x8x8|board, device 2 (rank 2, host pi-c): "
            "ina219: no INA219 answers at /dev/i2c-1") in text
    same_host = rank_rows("c", [(0.01, 0.0), (0.01, 0.0)], [share(0, "vm", 0.01),
                                                           share(1, "vm", 0.01)])
    assert same_host[0].device == "device 0 (rank 0, host vm, shared with other ranks)"


def test_the_csv_cells_of_a_gloo_case_sum_its_measured_devices() -> None:
    metering = Metering(None)
    metering.spec = "ledger"
    metering.status = MeterStatus("ledger", False, "not in this process")
    rows = metering.measure_ranks("c", lambda: [share(0, "a", 0.06), share(1, "b", 0.04),
                                                share(2, "c", None, "off")],
                                  [(0.02, 0.01), (0.01, 0.01), (0.5, 0.0)])
    assert len(rows) == 3 and metering.rows == rows
    assert metering.csv_columns  # rows from the ranks, though this process has no meter
    measured_j, estimated_j, ratio, stable = metering.csv_cells("c")
    assert float(str(measured_j)) == pytest.approx(0.10)
    assert float(str(estimated_j)) == pytest.approx(0.05)
    assert float(str(ratio)) == pytest.approx(2.0) and stable is True
    text = metering.section()
    assert "(The meter is unavailable in the process that ran pytest: not in this process.)" \
        in text
    controller = Metering(None)
    controller.merge_json(metering.to_json())
    assert controller.rows == metering.rows


def test_a_module_named_in_the_environment_registers_its_meters_in_every_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv(METER_MODULES_ENV, f" {FAKE} ")
    assert get_meter("share-fake").available().ok
    monkeypatch.setenv(METER_MODULES_ENV, "no_such_meter_module")
    with pytest.raises(MeterSpecError, match=r"EDGEENERGY_METER_MODULES: cannot import meter "
                                              r"module 'no_such_meter_module' \(Module"):
        get_meter("rapl")


# ---- real gloo ranks on 127.0.0.1 ------------------------------------------------------------

def expected_j(pm: PartitionedModel, device: int) -> float:
    """What the fake meter counts for a device's share: its MACs and bytes, from the plan."""
    import fake_share_meter as fake

    stats = pm.plan.device_stats()[device]
    return (fake.J_PER_MAC * stats.macs
            + fake.J_PER_BYTE * (stats.bytes_sent + stats.bytes_received))


@pytest.fixture
def fake_meter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # spawned workers get this process's path
    monkeypatch.setenv(METER_MODULES_ENV, FAKE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def tinycnn(strategy: str, n: int) -> tuple[PartitionedModel, torch.Tensor]:
    shape = model_input_shape("tinycnn")
    pm = partition(build_model("tinycnn"), strategy, n, shape)
    return pm, torch.randn(shape, generator=torch.Generator().manual_seed(5))


@pytest.mark.heavy  # 5-6 s on the shared 2-core machine (load 3-4), most of it the spawn
def test_spawned_gloo_workers_each_measure_their_own_share_and_an_unavailable_one_says_why(
        fake_meter_env: None) -> None:
    pm, x = tinycnn("spatial", 2)
    with GlooWorkers(2, timeout_s=60) as workers:
        shares = workers.measure(pm.plan, pm.graph, x,
                                 "share-fake:off=edgeenergy-gloo-device-1",
                                 StopRule(min_window_s=0.05, min_windows=2))
        out, trace = workers.run(pm.plan, pm.graph, x)  # the workers still run plans
    assert trace.device_stats() == pm.plan.device_stats()
    torch.testing.assert_close(out, pm(x), rtol=0, atol=1e-5)
    first, second = shares
    assert first.device == 0 and first.measured is not None and first.reason == ""
    assert first.measured.net_j == pytest.approx(expected_j(pm, 0), rel=1e-6)
    assert first.measured.stable and first.measured.scope.startswith("rank 0 on host ")
    assert "share-fake in process edgeenergy-gloo-device-0" in first.measured.how
    assert second.device == 1 and second.measured is None
    assert second.reason == "share-fake is off in process edgeenergy-gloo-device-1"


@pytest.mark.heavy
def test_a_meter_that_fails_in_one_rank_leaves_the_others_measured(
        fake_meter_env: None) -> None:
    pm, x = tinycnn("output-channel", 3)
    with GlooWorkers(3, timeout_s=60) as workers:
        shares = workers.measure(pm.plan, pm.graph, x, "share-fake:fail=edgeenergy-gloo-device-2",
                                 StopRule(min_window_s=0.1))
    for d in (0, 1):
        measured = shares[d].measured
        assert measured is not None
        assert measured.net_j == pytest.approx(expected_j(pm, d), rel=1e-6)
    assert shares[2].measured is None and shares[2].reason == (
        "the meter failed while measuring: share-fake failed on purpose in process "
        "edgeenergy-gloo-device-2")


@pytest.mark.heavy
def test_a_meter_that_crashes_in_one_rank_is_one_error_naming_the_device(
        fake_meter_env: None) -> None:
    pm, x = tinycnn("layer", 2)
    with GlooWorkers(2, timeout_s=30) as workers:
        with pytest.raises(PartitionError) as error:
            workers.measure(pm.plan, pm.graph, x, "share-fake:crash=edgeenergy-gloo-device-1",
                            StopRule(min_window_s=0.05, min_windows=2))
        assert not workers.alive
    text = str(error.value)
    assert text.startswith("gloo backend: device 1 failed while measuring its share with the "
                           "meter:")
    assert "RuntimeError: share-fake crashed on purpose in process edgeenergy-gloo-device-1" \
        in text


@pytest.fixture
def remote_worker(fake_meter_env: None) -> Iterator[RemoteWorkers]:
    """Rank 0 here, rank 1 as ``python -m pytest_edgeenergy worker`` with the fake meter."""
    with remote_rank() as workers:
        yield workers


@pytest.mark.heavy
def test_a_worker_rank_on_another_host_measures_its_share_with_its_own_meter(
        remote_worker: RemoteWorkers) -> None:
    pm, x = tinycnn("layer", 2)
    out, _ = remote_worker.run(pm.plan, pm.graph, x)
    shares = remote_worker.measure(pm.plan, pm.graph, x, "share-fake",
                                   StopRule(min_window_s=0.1))
    for d in (0, 1):
        measured = shares[d].measured
        assert measured is not None and shares[d].device == d
        assert measured.net_j == pytest.approx(expected_j(pm, d), rel=1e-6)
    assert "edgeenergy-rank-1" in (shares[1].measured.how if shares[1].measured else "")
    off = remote_worker.measure(pm.plan, pm.graph, x, "share-fake:off=edgeenergy-rank-1",
                                StopRule(min_window_s=0.1))
    assert off[0].measured is not None
    assert off[1].measured is None
    assert off[1].reason == "share-fake is off in process edgeenergy-rank-1"
    again, trace = remote_worker.run(pm.plan, pm.graph, x)
    torch.testing.assert_close(again, out)
    assert trace.device_stats() == pm.plan.device_stats()
