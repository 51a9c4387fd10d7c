"""Meters on fakes: a sysfs tree for RAPL, an NVML module, jtop, an I2C bus; and unavailable."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_edgeenergy.meters import (
    BOARD,
    CPU_PACKAGE,
    DRAM,
    GPU,
    MeterError,
    MeterSpecError,
    MeterUnavailableError,
    Reading,
    get_meter,
    meter_names,
)
from pytest_edgeenergy.meters.ina import Ina219Meter, Ina260Meter, to_signed16
from pytest_edgeenergy.meters.jetson import JetsonMeter, rail_domain
from pytest_edgeenergy.meters.nvml import NvmlMeter
from pytest_edgeenergy.meters.rapl import RaplMeter, counter_delta
from pytest_edgeenergy.meters.sampling import integrate_power

# --- RAPL -------------------------------------------------------------------------------


def make_zone(root: Path, folder: str, name: str, energy_uj: int, max_uj: int) -> Path:
    zone = root / folder
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_sums_packages_and_dram_and_skips_the_parts_of_a_package(tmp_path: Path) -> None:
    pkg0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, 262_143_328_850)
    pkg1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000, 262_143_328_850)
    core = make_zone(tmp_path, "intel-rapl:0:0", "core", 0, 262_143_328_850)
    dram = make_zone(tmp_path, "intel-rapl:0:1", "dram", 7_000_000, 65_532_610_987)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(pkg0, 3_500_000)  # +2.5 J
    set_energy(pkg1, 6_000_000)  # +1.0 J
    set_energy(core, 9_000_000)  # inside package-0: not counted again
    set_energy(dram, 7_250_000)  # +0.25 J
    reading = meter.stop()
    assert reading.joules == {CPU_PACKAGE: pytest.approx(3.5), DRAM: pytest.approx(0.25)}
    assert reading.total_j == pytest.approx(3.75)
    assert "package-0" in reading.how and "dram" in reading.how


def test_a_rapl_counter_that_wrapped_around_counts_through_its_range(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 262_143_000_000, 262_143_328_850)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(pkg, 1_671_150)  # past the top: 328_850 uJ to the range, then 1_671_150 uJ
    assert meter.stop().joules[CPU_PACKAGE] == pytest.approx(2.0)
    assert counter_delta(10, 4, 20) == 14
    assert counter_delta(4, 10, 20) == 6


def test_rapl_psys_is_the_board(tmp_path: Path) -> None:
    psys = make_zone(tmp_path, "intel-rapl:1", "psys", 0, 262_143_328_850)
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 262_143_328_850)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(psys, 4_000_000)
    reading = meter.stop()
    assert reading.joules[BOARD] == pytest.approx(4.0)
    assert reading.total_j == pytest.approx(4.0)  # the board includes the package


def test_rapl_is_unavailable_without_powercap_and_says_why(tmp_path: Path) -> None:
    meter = RaplMeter(tmp_path / "missing")
    status = meter.available()
    assert not status and "no " + str(tmp_path / "missing") in status.reason
    with pytest.raises(MeterUnavailableError, match="powercap RAPL driver"):
        meter.start()
    (tmp_path / "empty").mkdir()
    status = RaplMeter(tmp_path / "empty").available()
    assert not status.ok and "no package, dram or psys zone" in status.reason


def test_rapl_is_unavailable_when_the_counters_are_not_readable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 100)

    def denied(self: Any) -> int:
        raise PermissionError(13, "Permission denied", str(self.path / "energy_uj"))

    monkeypatch.setattr("pytest_edgeenergy.meters.rapl.RaplZone.read_uj", denied)
    status = RaplMeter(tmp_path).available()
    assert not status.ok and "permission denied" in status.reason and "root" in status.reason


# --- NVML -------------------------------------------------------------------------------


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """What NvmlMeter uses of pynvml: init, handles, energy counter (mJ), power (mW)."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: int = 2, counter: bool = True, init_fails: bool = False) -> None:
        self.energy_mj = [1000 * (i + 1) for i in range(gpus)]
        self.power_mw = [50_000.0] * gpus
        self.counter = counter
        self.init_fails = init_fails
        self.gpus = gpus

    def nvmlInit(self) -> None:  # noqa: N802  (pynvml's names)
        if self.init_fails:
            raise FakeNVMLError("Driver Not Loaded")
        self.initialised = True

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        if not self.counter:
            raise FakeNVMLError("Not Supported")
        return self.energy_mj[handle]

    def nvmlDeviceGetPowerUsage(self, handle: int) -> float:  # noqa: N802
        return self.power_mw[handle]


def test_nvml_sums_the_energy_counters_of_every_gpu() -> None:
    nvml = FakeNvml(gpus=2)
    meter = NvmlMeter(nvml)
    assert meter.available().reason == "NVML: 2 GPU(s), energy counter"
    meter.start()
    nvml.energy_mj[0] += 1500
    nvml.energy_mj[1] += 250
    reading = meter.stop()
    assert reading.joules == {GPU: pytest.approx(1.75)}
    assert "total energy counters of 2 GPU(s)" in reading.how
    meter.close()
    assert not nvml.initialised


def test_nvml_without_a_counter_integrates_sampled_power() -> None:
    nvml = FakeNvml(gpus=2, counter=False)  # 2 x 50 W
    meter = NvmlMeter(nvml, interval_s=0.005)
    assert "power sampling" in meter.available().reason
    meter.start()
    time.sleep(0.05)
    reading = meter.stop()
    assert reading.duration_s > 0.04
    assert reading.joules[GPU] == pytest.approx(100.0 * reading.duration_s)
    assert "sampled every 5 ms" in reading.how


def test_nvml_is_unavailable_without_a_driver_or_a_module(
        monkeypatch: pytest.MonkeyPatch) -> None:
    status = NvmlMeter(FakeNvml(init_fails=True)).available()
    assert not status and "cannot initialise (Driver Not Loaded)" in status.reason
    assert "no GPU" in NvmlMeter(FakeNvml(gpus=0)).available().reason

    def missing() -> Any:
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr("pytest_edgeenergy.meters.nvml._import_pynvml", missing)
    status = NvmlMeter().available()
    assert not status and "pip install nvidia-ml-py" in status.reason


# --- Jetson (jtop) ----------------------------------------------------------------------


class FakeJtop:
    """What JetsonMeter uses of jtop: start, ok, power (mW), close."""

    def __init__(self, power: Mapping[str, Any], service: bool = True) -> None:
        self.power = power
        self.service = service
        self.closed = False

    def start(self) -> None:
        if not self.service:
            raise RuntimeError("The jtop.service is not active")

    def ok(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


ORIN_POWER = {
    "rail": {"VDD_GPU_SOC": {"power": 3000.0}, "VDD_CPU_CV": {"power": 1000.0},
             "VIN_SYS_5V0": {"power": 2000.0}},
    "tot": {"power": 7000.0},
}
NANO_POWER = {
    "rail": {"POM_5V_GPU": {"power": 1000.0}, "POM_5V_CPU": {"power": 500.0}},
    "tot": {"power": 4000.0},
}


def test_jetson_rails_land_in_their_domains_and_tot_is_the_board() -> None:
    meter = JetsonMeter(lambda: FakeJtop(NANO_POWER), interval_s=0.005)
    assert meter.available().reason == "jetson: jtop rails (board, cpu-package, gpu)"
    meter.start()
    time.sleep(0.03)
    reading = meter.stop()
    t = reading.duration_s
    assert reading.joules == {BOARD: pytest.approx(4.0 * t), GPU: pytest.approx(1.0 * t),
                              CPU_PACKAGE: pytest.approx(0.5 * t)}
    assert reading.total_j == pytest.approx(4.0 * t)
    handle = meter._jtop
    meter.close()
    assert handle.closed


def test_a_shared_cpu_and_cv_rail_is_not_counted_as_the_cpu() -> None:
    assert rail_domain("VDD_CPU_CV") is None
    assert rail_domain("VDD_GPU_SOC") == GPU
    assert rail_domain("POM_5V_CPU") == CPU_PACKAGE
    assert rail_domain("VIN_SYS_5V0") is None
    meter = JetsonMeter(lambda: FakeJtop(ORIN_POWER), interval_s=0.005)
    meter.start()
    time.sleep(0.01)
    assert set(meter.stop().joules) == {BOARD, GPU}


def test_jetson_is_unavailable_without_jtop_or_its_service() -> None:
    def missing() -> Any:
        raise ImportError("No module named 'jtop'")

    status = JetsonMeter(missing).available()
    assert not status and "pip install jetson-stats" in status.reason
    status = JetsonMeter(lambda: FakeJtop(NANO_POWER, service=False)).available()
    assert not status and "jtop service does not answer" in status.reason
    status = JetsonMeter(lambda: FakeJtop({"rail": {}})).available()
    assert not status and "no power rail" in status.reason


# --- INA219 / INA260 on I2C -------------------------------------------------------------


class FakeBus:
    """An I2C bus with one device: 16-bit registers, most significant byte first."""

    def __init__(self, address: int, registers: dict[int, int]) -> None:
        self.address = address
        self.registers = registers

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        if i2c_addr != self.address:
            raise OSError(121, "Remote I/O error")
        value = self.registers[register]
        assert length == 2
        return [value >> 8, value & 0xFF]


def ina219_registers(shunt_v: float, bus_v: float) -> dict[int, int]:
    shunt = round(shunt_v / 10e-6) & 0xFFFF  # LSB 10 uV, two's complement
    bus = round(bus_v / 4e-3) << 3  # LSB 4 mV in bits 15-3
    return {0x00: 0x399F, 0x01: shunt, 0x02: bus | 0x2}  # bit 1: conversion ready


def test_ina219_power_is_bus_voltage_times_shunt_current() -> None:
    # 5.08 V at the load, 0.1 ohm shunt, 64.0 mV across it: 0.64 A, 3.2512 W.
    bus = FakeBus(0x40, ina219_registers(0.064, 5.08))
    meter = Ina219Meter(bus_factory=lambda n: bus, interval_s=0.002)
    assert meter.available().reason == "INA219 at /dev/i2c-1 address 0x40"
    assert meter.power_w() == pytest.approx(5.08 * 0.64)
    meter.start()
    time.sleep(0.02)
    reading = meter.stop()
    assert reading.joules[BOARD] == pytest.approx(5.08 * 0.64 * reading.duration_s)
    assert "INA219 at /dev/i2c-1 address 0x40" in reading.how and "0.1 ohm" in reading.how


def test_ina219_reads_a_negative_shunt_voltage_as_two_s_complement() -> None:
    assert to_signed16(0xFFFF) == -1
    assert to_signed16(0x7FFF) == 32767
    bus = FakeBus(0x41, ina219_registers(-0.010, 5.0))
    meter = Ina219Meter(address=0x41, shunt_ohm=0.05, bus_factory=lambda n: bus)
    assert meter.available()
    assert meter.power_w() == pytest.approx(5.0 * -0.2)


def test_ina260_scales_its_power_register_by_10_mw() -> None:
    bus = FakeBus(0x40, {0xFE: 0x5449, 0xFF: 0x2270, 0x03: 512, 0x01: 400, 0x02: 4000})
    meter = Ina260Meter(bus_factory=lambda n: bus, interval_s=0.002)
    assert meter.available()
    assert meter.power_w() == pytest.approx(5.12)  # 512 x 10 mW


def test_ina_sensors_are_unavailable_when_nothing_answers_or_the_part_differs() -> None:
    bus = FakeBus(0x40, {0xFE: 0x5449, 0xFF: 0x2270, 0x02: 0})
    status = Ina219Meter(address=0x45, bus_factory=lambda n: bus).available()
    assert not status and "no INA219 answers at /dev/i2c-1 address 0x45" in status.reason
    other = FakeBus(0x40, {0xFE: 0x1234, 0xFF: 0x0000})
    status = Ina260Meter(bus_factory=lambda n: other).available()
    assert not status and "not an INA260 (manufacturer ID 0x1234" in status.reason

    def no_device(number: int) -> Any:
        raise FileNotFoundError(2, "No such file or directory")

    status = Ina260Meter(bus=3, bus_factory=no_device).available()
    assert not status and "cannot open /dev/i2c-3" in status.reason


# --- registry, readings -----------------------------------------------------------------


def test_meters_are_named_with_parameters_and_bad_names_say_what_exists() -> None:
    assert {"rapl", "nvml", "jetson", "ina219", "ina260"} <= set(meter_names())
    meter = get_meter("ina219:bus=0,address=0x44,shunt_ohm=0.01")
    assert isinstance(meter, Ina219Meter)
    assert (meter.bus_number, meter.address, meter.shunt_ohm) == (0, 0x44, 0.01)
    with pytest.raises(MeterSpecError, match="unknown meter 'rappl' \\(did you mean 'rapl'"):
        get_meter("rappl")
    with pytest.raises(MeterSpecError, match="address='forty' is not a whole number"):
        get_meter("ina260:address=forty")
    with pytest.raises(MeterSpecError, match="bad parameters"):
        get_meter("rapl:colour=red")


def test_this_machine_has_no_rapl_nvml_or_jetson_and_each_says_why() -> None:
    # The project's machines have none of these; on a machine that has one the test skips.
    for name in ("rapl", "nvml", "jetson"):
        status = get_meter(name).available()
        if status.ok:
            pytest.skip(f"{name} is available here: {status.reason}")
        assert status.reason.startswith(("RAPL", "NVML", "jetson"))


@pytest.mark.parametrize("meter", [
    NvmlMeter(FakeNvml(gpus=1, counter=False)),
    JetsonMeter(lambda: FakeJtop(NANO_POWER)),
    Ina219Meter(bus_factory=lambda n: FakeBus(0x40, ina219_registers(0.01, 5.0))),
], ids=lambda m: m.name)
def test_a_sampling_meter_stopped_before_it_started_names_itself(meter: Any) -> None:
    with pytest.raises(MeterError, match=rf"^{meter.name}: stop\(\) without start\(\)$"):
        meter.stop()
    meter.start()
    meter.stop()
    with pytest.raises(MeterError, match="stop"):
        meter.stop()


def test_power_samples_integrate_with_the_trapezoid_rule() -> None:
    samples = [(0.0, {BOARD: 2.0}), (1.0, {BOARD: 4.0}), (3.0, {BOARD: 4.0, GPU: 1.0}),
               (4.0, {BOARD: 0.0, GPU: 3.0})]
    assert integrate_power(samples) == {BOARD: 3.0 + 8.0 + 2.0, GPU: 2.0}


def test_a_reading_refuses_unknown_domains() -> None:
    with pytest.raises(ValueError, match="unknown domain"):
        Reading("x", {"cpu": 1.0}, 1.0, "")
