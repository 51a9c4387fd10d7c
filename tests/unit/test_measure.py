"""Measuring an inference: windows repeated until stable, an idle baseline subtracted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from ledger_meter import FakeMachine, LedgerMeter

from pytest_edgeenergy.meters import (
    MeasuredEnergy,
    MeterSpecError,
    StopRule,
    measure_energy,
    register_meter,
    unregister_meter,
)
from pytest_edgeenergy.meters.compare import MeasuredRow, MeterStatus, local_row, measured_section
from pytest_edgeenergy.meters.measure import relative_standard_error
from pytest_edgeenergy.meters.metering import Metering


def measure(machine: FakeMachine, rule: StopRule | None = None) -> MeasuredEnergy:
    return measure_energy(machine.run, LedgerMeter(machine), rule, clock=machine.clock,
                          sleep=machine.sleep)


def test_a_steady_machine_gives_the_energy_above_idle_after_the_minimum_windows() -> None:
    machine = FakeMachine(idle_w=3.0, active_w=7.0, run_s=0.01)
    result = measure(machine, StopRule(min_window_s=0.2))
    # (7 W - 3 W) x 10 ms = 0.04 J above idle; 20 runs fill a 0.2 s window.
    assert result.net_j == pytest.approx(0.04)
    assert result.gross_j == pytest.approx(0.07)
    assert result.idle_w == pytest.approx(3.0)
    assert result.runs_per_window == 20
    assert len(result.active.values) == len(result.idle.values) == 3
    assert result.stable and result.rse == pytest.approx(0.0)
    assert machine.runs == 2 + 3 * 20  # warm-up, timing run, three windows
    assert "3 windows of 20 inference(s) minus an idle baseline of 3 windows (3 W)" \
        in result.describe()


def test_a_noisy_machine_repeats_until_the_target_or_the_limit() -> None:
    noisy = FakeMachine(idle_w=3.0, active_w=7.0, run_s=0.01, jitter=(2.0,) * 20 + (-2.0,) * 20)
    result = measure(noisy, StopRule(min_window_s=0.2, target_rse=0.001, max_windows=8))
    assert len(result.active.values) == 8 and not result.stable
    assert "NOT STABLE" in result.describe()
    assert result.net_j == pytest.approx(0.04)  # the jitter averages out over 8 windows
    relaxed = measure(FakeMachine(3.0, 7.0, 0.01, jitter=(2.0,) * 20 + (-2.0,) * 20),
                      StopRule(min_window_s=0.2, target_rse=0.2))
    assert relaxed.stable and len(relaxed.active.values) < 8


def test_relative_standard_error_is_the_standard_error_over_the_mean() -> None:
    assert relative_standard_error([1.0, 3.0]) == pytest.approx(1.4142135 / 1.4142135 / 2)
    assert relative_standard_error([5.0]) == float("inf")


def test_a_bad_stopping_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="target_rse"):
        StopRule(target_rse=0)
    with pytest.raises(ValueError, match="min_windows"):
        StopRule(min_windows=5, max_windows=3)


def test_the_measured_row_sets_the_machine_beside_the_sum_of_the_devices_estimates() -> None:
    machine = FakeMachine(idle_w=3.0, active_w=7.0, run_s=0.01)  # 0.04 J above idle
    measured = measure(machine, StopRule(min_window_s=0.2))
    row = local_row("tinycnn|layer|2xrpi4|1x3x32x32|board", [(0.02, 0.005), (0.01, 0.005)],
                    measured)
    assert row.estimated_j == pytest.approx(0.04)
    assert row.ratio == pytest.approx(1.0)
    assert row.device == "devices 0-1 on this host (local backend)"
    assert MeasuredRow.from_dict(row.to_dict()) == row
    text = measured_section(MeterStatus("ledger", True, "a ledger"), [row])
    lines = text.splitlines()
    assert lines[0] == "measured beside estimated (meter ledger)"
    assert lines[1].split() == ["case", "measured", "on", "measured", "J", "estimated", "J",
                                "measured", "/", "estimated", "idle", "W", "windows", "rel.",
                                "std.", "error"]
    assert lines[3].split()[:6] == ["tinycnn|layer|2xrpi4|1x3x32x32|board", "devices", "0-1",
                                    "on", "this", "host"]
    assert lines[3].split()[-6:] == ["0.04", "0.04", "1", "3", "3", "0.0%"]
    assert "the whole machine is the one device measured" in text


def test_an_unavailable_meter_is_one_line_with_its_reason() -> None:
    status = MeterStatus("rapl", False, "RAPL: no /sys/class/powercap")
    assert measured_section(status, []) == (
        "measured beside estimated (meter rapl)\nmeter 'rapl' unavailable: RAPL: no "
        "/sys/class/powercap; nothing was measured\n")
    assert measured_section(None, []) == ""


def test_metering_records_rows_that_travel_as_json_and_says_why_it_cannot_measure(
        tmp_path: Path) -> None:
    machine = FakeMachine(idle_w=3.0, active_w=7.0, run_s=0.01)
    register_meter("ledger-test", lambda: LedgerMeter(machine))
    try:
        metering = Metering("ledger-test", StopRule(min_window_s=0.2), clock=machine.clock,
                            sleep=machine.sleep)
    finally:
        unregister_meter("ledger-test")
    assert metering.skip_reason is None
    row = metering.measure_local("case|a", machine.run, [(0.03, 0.01)])
    assert row is not None and row.measured_j == pytest.approx(0.04)
    assert row.ratio == pytest.approx(1.0)
    controller = Metering(None)
    controller.merge_json(metering.to_json())
    assert controller.rows == metering.rows
    assert controller.section() == "" and controller.skip_reason == (
        "no meter: run with --edge-meter=NAME")
    missing = Metering(f"rapl:root={tmp_path / 'none'}")
    assert missing.meter is None and missing.status is not None and not missing.status.ok
    assert missing.skip_reason == (
        f"meter 'rapl:root={tmp_path / 'none'}' unavailable: RAPL: no {tmp_path / 'none'} "
        "(the kernel has no powercap RAPL driver, or this is not Linux on an Intel or AMD x86 "
        "processor)")
    assert missing.measure_local("case|a", machine.run, [(0.03, 0.01)]) is None
    with pytest.raises(MeterSpecError, match="unknown meter 'nope'"):
        Metering("nope")


class StretchedMachine(FakeMachine):
    """Each inference does the same work (``work_j`` above idle) but some take longer, as
    when another process holds a core: the extra time is spent at idle power."""

    def __init__(self, idle_w: float, work_j: float, run_s: tuple[float, ...]) -> None:
        super().__init__(idle_w, idle_w, run_s[0])
        self.work_j = work_j
        self._times = itertools.cycle(run_s)

    def run(self) -> None:
        seconds = next(self._times)
        self.runs += 1
        self.t += seconds
        self.energy_j += self.idle_w * seconds + self.work_j


def test_windows_stretched_by_other_load_subtract_their_own_idle_time() -> None:
    # The first window's 20 runs take 10 ms each, the next 20 take 30 ms: gross joules per
    # inference differ by 3 W x 20 ms, the energy above idle (2 mJ) does not.
    machine = StretchedMachine(idle_w=3.0, work_j=0.002, run_s=(0.01,) * 22 + (0.03,) * 20)
    result = measure(machine, StopRule(min_window_s=0.2))
    assert result.net_j == pytest.approx(0.002)
    assert result.stable and result.rse == pytest.approx(0.0, abs=1e-9)
    assert len(result.active.values) == 3
    assert result.gross_j == pytest.approx(0.002 + 3.0 * result.seconds_per_run)
