"""``calibrate --meter``: idle_w and active_w from a meter, each line saying how."""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_edgeenergy import calibrate
from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.meters import (
    BOARD,
    CPU_PACKAGE,
    Availability,
    MeterError,
    Reading,
    register_meter,
    unregister_meter,
)
from pytest_edgeenergy.meters import calibrate as meter_calibrate
from pytest_edgeenergy.profiles import load_device

FAKE = calibrate.Calibration(
    macs_per_s=1.0e10, mem_bytes_per_s=5.0e9, memory_bytes=2**30, torch_version="9.9.9",
    threads=2, when=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), command="x")

REST = """
network = "Gigabit Ethernet"
net_bytes_per_s = 1.0e8
net_latency_s = 2.0e-4
tx_j_per_byte = 5.0e-9
rx_j_per_byte = 5.0e-9
"""

IDLE_W = 2.5
JOULES_PER_LOAD = 0.004


class VirtualClock:
    """A clock that moves only when the code under test sleeps or the fake load runs, so the
    windows of the measurement (0.25 s each) take no real time."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds


class LoadMeter:
    """Idle power plus a fixed energy per call of the load, on a virtual clock."""

    name = "loadmeter"

    def __init__(self, clock: VirtualClock, domain: str = BOARD, active: bool = True) -> None:
        self.clock = clock
        self.domain = domain
        self.active = active
        self.calls = 0
        self._start = (0.0, 0)

    def available(self) -> Availability:
        return Availability(True, "a fake")

    def load(self) -> None:
        self.calls += 1
        self.clock.sleep(0.001)

    def start(self) -> None:
        self._start = (self.clock(), self.calls)

    def stop(self) -> Reading:
        t0, calls = self._start
        seconds = self.clock() - t0
        # A load that lowers the power: what a meter too coarse for the load may report.
        extra = (self.calls - calls) * JOULES_PER_LOAD * (1 if self.active else -1)
        return Reading(self.name, {self.domain: IDLE_W * seconds + extra}, seconds,
                       "a fake meter")


@pytest.fixture
def fake_meter(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadMeter]:
    clock = VirtualClock()
    meter = LoadMeter(clock)
    register_meter("loadmeter", lambda: meter)
    monkeypatch.setattr(calibrate, "measure", lambda seconds, command: FAKE)
    monkeypatch.setattr(meter_calibrate, "conv_load", lambda: meter.load)
    monkeypatch.setattr(meter_calibrate, "measure_power", functools.partial(
        meter_calibrate.measure_power, clock=clock, sleep=clock.sleep))
    yield meter
    unregister_meter("loadmeter")


def test_calibrate_with_a_meter_fills_idle_and_active_power_and_says_how(
        tmp_path: Path, fake_meter: LoadMeter, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "host.toml"
    assert main(["calibrate", "--out", str(out), "--seconds", "1", "--meter", "loadmeter"]) == 0
    text = out.read_text(encoding="utf-8")
    values = tomllib.loads(text)
    assert values["idle_w"] == pytest.approx(IDLE_W, rel=1e-3)
    assert values["active_w"] > values["idle_w"] + 1.0  # ~4 mJ per ms of load: ~ +3 W
    flat = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert "Measured with meter 'loadmeter' (a fake meter): mean power over" in flat
    assert "windows of 0.25 s idle (this process asleep)" in flat
    assert "the calibration conv2d layers running back to back" in flat
    assert "NOT THE WHOLE BOARD" not in flat
    assert flat.count("Measured with meter") == 2  # the two power lines, and no other
    header = flat.split("until every FILL IN field below is filled in:")[1].split(".")[0]
    assert "idle_w" not in header and "active_w" not in header and "network" in header
    printed = capsys.readouterr().out
    assert "measured: idle_w = " in printed and "measured: active_w = " in printed
    assert "idle_w" not in printed.split("filled in:")[1].split(".")[0]
    out.write_text(text + REST, encoding="utf-8")
    assert load_device(out).idle_w == values["idle_w"]


def test_a_meter_that_misses_the_board_says_so_in_the_profile(
        tmp_path: Path, fake_meter: LoadMeter) -> None:
    fake_meter.domain = CPU_PACKAGE
    out = tmp_path / "host.toml"
    assert calibrate.run(out, seconds=1.0, meter="loadmeter") == 0
    flat = " ".join(line.lstrip("# ") for line in out.read_text(encoding="utf-8").splitlines())
    assert "NOT THE WHOLE BOARD: the meter read cpu-package only" in flat


def test_an_unavailable_meter_is_an_error_naming_the_reason_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "measure", lambda seconds, command: FAKE)
    out = tmp_path / "host.toml"
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--out", str(out), "--meter", f"rapl:root={tmp_path / 'none'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "is unavailable here: RAPL: no " in err
    assert not out.exists()


def test_an_active_power_below_idle_is_refused(tmp_path: Path, fake_meter: LoadMeter) -> None:
    fake_meter.active = False
    out = tmp_path / "host.toml"
    with pytest.raises(MeterError, match="below idle_w"):
        calibrate.run(out, seconds=1.0, meter="loadmeter")
    assert not out.exists()
