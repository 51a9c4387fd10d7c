"""Linux RAPL through the powercap sysfs tree: CPU package, DRAM and platform energy counters.

The kernel's powercap framework (Documentation/power/powercap/powercap.rst) exposes each RAPL
zone as a folder ``/sys/class/powercap/intel-rapl:N`` (subzones ``intel-rapl:N:M``) holding
``name`` (``package-N``, ``core``, ``uncore``, ``dram``, ``psys``), ``energy_uj`` (a
counter in microjoules) and ``max_energy_range_uj`` (the counter's range: it wraps to 0
past it). AMD processors use the same driver and names.

Domains: every ``package-N`` zone sums into ``cpu-package``, ``dram`` zones into ``dram``,
``psys`` (the whole SoC platform, where the firmware exposes it) into ``board``. ``core`` and
``uncore`` are parts of the package and are not counted twice.

Wrap-around: a counter lower at ``stop()`` than at ``start()`` has wrapped once, and the
difference is ``end + max_energy_range_uj - start``. A measurement longer than a full
counter range (minutes to hours, depending on the power) cannot be told apart: keep
measurements short.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from .protocol import (
    BOARD,
    CPU_PACKAGE,
    DRAM,
    Availability,
    MeterError,
    MeterUnavailableError,
    Reading,
)

__all__ = ["DEFAULT_POWERCAP", "RaplMeter", "RaplZone", "counter_delta"]

DEFAULT_POWERCAP = Path("/sys/class/powercap")
"""Where the kernel exposes powercap zones."""

_PREFIXES = ("intel-rapl:", "intel-rapl-mmio:")


def counter_delta(start_uj: int, end_uj: int, max_range_uj: int) -> int:
    """Microjoules between two reads of a counter that wraps to 0 past ``max_range_uj``."""
    if end_uj >= start_uj:
        return end_uj - start_uj
    return end_uj + max_range_uj - start_uj


def _domain(zone_name: str) -> str | None:
    if zone_name.startswith("package"):
        return CPU_PACKAGE
    if zone_name == "dram":
        return DRAM
    if zone_name == "psys":
        return BOARD
    return None  # core, uncore: inside the package


@dataclasses.dataclass(frozen=True)
class RaplZone:
    """One counted zone: its folder, its name and the domain it adds to."""

    path: Path
    name: str
    domain: str
    max_range_uj: int

    def read_uj(self) -> int:
        """The counter now, in microjoules."""
        return int((self.path / "energy_uj").read_text().strip())


class RaplMeter:
    """Energy of the CPU packages, DRAM and platform from RAPL (see the module docstring).

    ``root`` is the powercap folder (a fake tree in tests).
    """

    name = "rapl"

    def __init__(self, root: Path = DEFAULT_POWERCAP,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.root = Path(root)
        self._clock = clock
        self._zones: list[RaplZone] | None = None
        self._start: tuple[float, list[int]] | None = None

    def zones(self) -> list[RaplZone]:
        """The zones counted, found under :attr:`root` (raises :class:`MeterUnavailableError`)."""
        if not self.root.is_dir():
            raise MeterUnavailableError(
                f"RAPL: no {self.root} (the kernel has no powercap RAPL driver, or this is "
                "not Linux on an Intel or AMD x86 processor)")
        zones = []
        for folder in sorted(p for p in self.root.iterdir() if p.name.startswith(_PREFIXES)):
            try:
                name = (folder / "name").read_text().strip()
                domain = _domain(name)
                if domain is None:
                    continue
                max_range = int((folder / "max_energy_range_uj").read_text().strip())
                zone = RaplZone(folder, name, domain, max_range)
                zone.read_uj()
            except PermissionError as exc:
                raise MeterUnavailableError(
                    f"RAPL: cannot read {exc.filename or folder}: permission denied (since "
                    "Linux 5.10 only root reads energy_uj; run as root or grant read access, "
                    "e.g. chmod o+r on the energy_uj files)") from None
            except (OSError, ValueError) as exc:
                raise MeterUnavailableError(f"RAPL: cannot read zone {folder}: {exc}") from None
            zones.append(zone)
        if not zones:
            raise MeterUnavailableError(f"RAPL: no package, dram or psys zone under {self.root}")
        return zones

    def available(self) -> Availability:
        """Whether RAPL counters can be read here, and which."""
        try:
            zones = self.zones()
        except MeterUnavailableError as exc:
            return Availability(False, str(exc))
        return Availability(True, "RAPL zones " + ", ".join(
            f"{z.name} ({z.domain})" for z in zones))

    def start(self) -> None:
        """Read every counter."""
        if self._zones is None:
            self._zones = self.zones()
        self._start = (self._clock(), self._read(self._zones))

    def _read(self, zones: list[RaplZone]) -> list[int]:
        try:
            return [z.read_uj() for z in zones]
        except (OSError, ValueError) as exc:
            raise MeterError(f"RAPL: cannot read a counter under {self.root}: {exc}") from None

    def stop(self) -> Reading:
        """Read every counter again; joules per domain, wrap-around handled."""
        if self._start is None or self._zones is None:
            raise MeterError("RAPL: stop() without start()")
        t0, begin = self._start
        end = self._read(self._zones)
        duration = self._clock() - t0
        self._start = None
        joules: dict[str, float] = {}
        for zone, a, b in zip(self._zones, begin, end, strict=True):
            joules[zone.domain] = (joules.get(zone.domain, 0.0)
                                   + counter_delta(a, b, zone.max_range_uj) * 1e-6)
        names = ", ".join(z.name for z in self._zones)
        return Reading(self.name, joules, duration,
                       f"RAPL energy counters ({names}) under {self.root}")
