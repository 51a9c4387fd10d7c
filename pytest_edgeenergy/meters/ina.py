"""INA219 and INA260 current/power monitors on I2C: the usual way to meter a Raspberry Pi.

The sensor sits in the board's supply line; this process reads it over I2C (``/dev/i2c-N``
through an smbus2-style bus, injectable for tests) and integrates power over time
(:mod:`.sampling`) into the ``board`` domain. Registers are 16 bits, sent most significant
byte first, read here with ``read_i2c_block_data(address, register, 2)``.

Register maps and scaling, from Texas Instruments' datasheets:

- INA219 (SBOS448G, "INA219 Zerø-Drift, Bidirectional Current/Power Monitor With I2C
  Interface", section 8.6 Register Maps): 00h configuration (power-on value 399Fh:
  32 V bus range, PGA /8 = +-320 mV, 12-bit, shunt and bus continuous), 01h shunt voltage
  (two's complement, LSB 10 uV), 02h bus voltage (bits 15-3, LSB 4 mV; bit 0 OVF: the
  power or current calculation overflowed). Current is the shunt voltage over the shunt
  resistance (``shunt_ohm``, 0.1 ohm on the common breakout boards), and power is bus
  voltage times current: the calibration, current and power registers (03h-05h) are not
  needed, so nothing is written to the sensor.
- INA260 (SBOS656C, "INA260 Precision Digital Current and Power Monitor With Low-Drift,
  Precision Integrated Shunt", section 8.6 Register Maps): 01h current (two's complement,
  LSB 1.25 mA), 02h bus voltage (LSB 1.25 mV), 03h power (LSB 10 mW), FEh manufacturer ID
  (5449h, "TI"), FFh die ID (2270h: device 227h, revision 0). The integrated 2 mohm shunt
  needs no calibration.

Both parts answer at 40h when A0 and A1 are tied to ground (the breakouts' default).

Checked against public sources (facts only; no code taken), December 2026:

- the Linux kernel's hwmon driver ``drivers/hwmon/ina2xx.c`` (torvalds/linux): INA219
  registers 00h configuration, 01h shunt voltage, 02h bus voltage, 03h power, 04h current,
  05h calibration; configuration default 399Fh ("PGA=8"); shunt voltage register divided by
  100 gives millivolts (LSB 10 uV, signed); bus voltage shifted right by 3, LSB 4000 uV.
- Adafruit's INA219 driver constants (Adafruit_INA219.cpp and ports of it): shunt ADC
  "12-bit, 1 sample, 532 us"; configuration bits 399Fh = 32 V range (2000h), gain /8 320 mV
  (1800h), 12-bit bus (0180h) and shunt (0018h) ADC, continuous shunt and bus (7h); bus
  voltage register bit 0 is the math overflow flag (set when the power or current
  *calculation* is out of range, so the current and power registers may be meaningless),
  bit 1 conversion ready.
- Adafruit_CircuitPython_INA260 (``adafruit_ina260.py``): INA260 registers 01h current
  (signed, x 1.25 mA), 02h bus voltage (x 1.25 mV), 03h power (x 10 mW), FEh manufacturer
  ID 5449h, FFh die ID whose bits 15-4 are the device ID 227h and bits 3-0 the revision
  (so the register reads 2270h on revision 0: only bits 15-4 are compared here); power-on
  averaging of 1 sample and 1.1 ms conversion time per channel.
- TI's datasheets themselves, as published pages: SBOS448G's contents (8.6.3.1 Shunt Voltage
  Register 01h, 8.6.3.2 Bus Voltage Register 02h: "LSB = 4 mV", bit 1 CNVR, bit 0 OVF "set
  when the Power or Current calculations are out of range"), SBOS448F's register summary
  (power-on 399Fh) and ADC settings table (12-bit: 532 us), SBOS656C's contents (8.6.2
  Current 01h, 8.6.3 Bus Voltage 02h, 8.6.4 Power 03h, 8.6.7 Manufacturer ID FEh, 8.6.8 Die
  ID FFh) and its integrated 2 mohm shunt.

Every register address, LSB and ID above matched what was written from the datasheets. Two
things were wrong and are corrected: the section numbers cited for the INA219's shunt and bus
voltage registers (8.6.3.1 and 8.6.3.2, they said 8.6.3.2 and 8.6.3.3) and the table cited
for its conversion time; and the wording of the INA219 overflow message (the flag is about
the sensor's own current/power calculation, not a saturated shunt reading).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from .protocol import BOARD, Availability, MeterError, MeterUnavailableError, Reading
from .sampling import SamplingMeter

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_BUS",
    "INA219_BUS_LSB_V",
    "INA219_SHUNT_LSB_V",
    "INA260_BUS_LSB_V",
    "INA260_CURRENT_LSB_A",
    "INA260_POWER_LSB_W",
    "I2CBus",
    "Ina219Meter",
    "Ina260Meter",
    "to_signed16",
]

DEFAULT_BUS = 1
"""``/dev/i2c-1``: the I2C bus on a Raspberry Pi's GPIO header (pins 3 and 5)."""
DEFAULT_ADDRESS = 0x40
"""The address of an INA219/INA260 with A0 and A1 tied to ground."""
DEFAULT_INTERVAL_S = 0.005
"""How often the sensor is read: an INA219 at its power-on 12-bit setting converts in
532 us (SBOS448G, 8.6.2.1 configuration register, ADC settings table; Table 6 in revision
SBOS448F), so 5 ms samples are fresh ones."""

INA219_SHUNT_LSB_V = 10e-6
"""INA219 shunt voltage register LSB: 10 uV (SBOS448G, 8.6.3.1 Shunt Voltage Register)."""
INA219_BUS_LSB_V = 4e-3
"""INA219 bus voltage register LSB: 4 mV, value in bits 15-3 (SBOS448G, 8.6.3.2 Bus Voltage
Register)."""
INA219_SHUNT, INA219_BUS = 0x01, 0x02
INA219_OVF = 0x0001

INA260_CURRENT_LSB_A = 1.25e-3
"""INA260 current register LSB: 1.25 mA (SBOS656C, 8.6.2)."""
INA260_BUS_LSB_V = 1.25e-3
"""INA260 bus voltage register LSB: 1.25 mV (SBOS656C, 8.6.3)."""
INA260_POWER_LSB_W = 10e-3
"""INA260 power register LSB: 10 mW (SBOS656C, 8.6.4)."""
INA260_CURRENT, INA260_BUS, INA260_POWER = 0x01, 0x02, 0x03
INA260_MANUFACTURER_ID, INA260_DIE_ID = 0xFE, 0xFF
INA260_TI = 0x5449
INA260_DIE = 0x2270


class I2CBus(Protocol):
    """What is used of an ``smbus2.SMBus``."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read ``length`` bytes starting at ``register``."""
        ...


def to_signed16(value: int) -> int:
    """A 16-bit register value read as two's complement."""
    return value - 0x10000 if value & 0x8000 else value


def _default_bus(number: int) -> Any:
    smbus2 = importlib.import_module("smbus2")
    return smbus2.SMBus(number)


class _InaMeter(SamplingMeter):
    """What both sensors share: opening the bus, reading a register, sampling power."""

    name = "ina"
    part = "INA"

    def __init__(self, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS,
                 bus_factory: Callable[[int], I2CBus] | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(interval_s, clock)
        self.bus_number = bus
        self.address = address
        self._factory = bus_factory or _default_bus
        self._bus: I2CBus | None = None

    @property
    def where(self) -> str:
        """E.g. ``/dev/i2c-1 address 0x40``."""
        return f"/dev/i2c-{self.bus_number} address {self.address:#04x}"

    def _open(self) -> I2CBus:
        if self._bus is not None:
            return self._bus
        try:
            bus = self._factory(self.bus_number)
        except ImportError:
            raise MeterUnavailableError(f"{self.name}: the smbus2 module is not installed "
                                   "(pip install smbus2)") from None
        except OSError as exc:
            raise MeterUnavailableError(
                f"{self.name}: cannot open /dev/i2c-{self.bus_number} ({exc.strerror or exc}); "
                "enable I2C (raspi-config) and check the bus number") from None
        self._bus = bus
        try:
            self.identify()
        except OSError as exc:
            self._bus = None
            raise MeterUnavailableError(f"{self.name}: no {self.part} answers at {self.where} "
                                   f"({exc.strerror or exc})") from None
        return bus

    def register(self, reg: int) -> int:
        """The 16-bit value of register ``reg`` (most significant byte first on the wire)."""
        assert self._bus is not None
        high, low = self._bus.read_i2c_block_data(self.address, reg, 2)
        return (high << 8) | low

    def identify(self) -> None:
        """Check that the sensor answers (raises MeterUnavailableError or OSError)."""

    def power_w(self) -> float:
        """Watts at the sensor now."""
        raise NotImplementedError

    def available(self) -> Availability:
        """Whether the sensor answers on the bus."""
        try:
            self._open()
        except MeterUnavailableError as exc:
            return Availability(False, str(exc))
        return Availability(True, f"{self.part} at {self.where}")

    def _read(self) -> dict[str, float]:
        try:
            return {BOARD: self.power_w()}
        except OSError as exc:
            raise MeterError(f"{self.name}: reading {self.where} failed: "
                             f"{exc.strerror or exc}") from None

    def start(self) -> None:
        """Begin sampling the sensor's power."""
        self._open()
        self._start_sampling(self._read)

    def stop(self) -> Reading:
        """Joules at the sensor since :meth:`start`."""
        joules, duration, count = self._stop_sampling()
        return Reading(self.name, {BOARD: joules.get(BOARD, 0.0)}, duration,
                       f"{self.part} at {self.where}: {self._how()}, {self._sampled(count)}")

    def _how(self) -> str:
        return "power"


class Ina219Meter(_InaMeter):
    """An INA219 with an external shunt of ``shunt_ohm`` (see the module docstring)."""

    name = "ina219"
    part = "INA219"

    def __init__(self, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS,
                 shunt_ohm: float = 0.1, bus_factory: Callable[[int], I2CBus] | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not shunt_ohm > 0:
            raise ValueError(f"ina219: shunt_ohm must be positive, got {shunt_ohm!r}")
        super().__init__(bus, address, bus_factory, interval_s, clock)
        self.shunt_ohm = shunt_ohm

    def identify(self) -> None:
        """The INA219 has no ID register: one read of the bus voltage must succeed."""
        self.register(INA219_BUS)

    def power_w(self) -> float:
        """Bus voltage times shunt voltage over the shunt resistance."""
        shunt_v = to_signed16(self.register(INA219_SHUNT)) * INA219_SHUNT_LSB_V
        bus_raw = self.register(INA219_BUS)
        if bus_raw & INA219_OVF:
            raise MeterError(f"ina219: overflow at {self.where}: the math overflow flag (bit 0 "
                             "of the bus voltage register) is set, so the sensor's current and "
                             "power are out of range (check the shunt and the load)")
        bus_v = (bus_raw >> 3) * INA219_BUS_LSB_V
        return bus_v * shunt_v / self.shunt_ohm

    def _how(self) -> str:
        return f"bus voltage x shunt voltage / {self.shunt_ohm:g} ohm"


class Ina260Meter(_InaMeter):
    """An INA260 with its integrated shunt (see the module docstring)."""

    name = "ina260"
    part = "INA260"

    def identify(self) -> None:
        """Check the manufacturer and die ID registers."""
        manufacturer = self.register(INA260_MANUFACTURER_ID)
        die = self.register(INA260_DIE_ID)
        if manufacturer != INA260_TI or die & 0xFFF0 != INA260_DIE:
            raise MeterUnavailableError(
                f"ina260: the device at {self.where} is not an INA260 (manufacturer ID "
                f"{manufacturer:#06x}, die ID {die:#06x}; expected {INA260_TI:#06x}, "
                f"{INA260_DIE:#06x})")

    def power_w(self) -> float:
        """The power register (the sensor multiplies current by bus voltage itself)."""
        return self.register(INA260_POWER) * INA260_POWER_LSB_W

    def _how(self) -> str:
        return "power register"
