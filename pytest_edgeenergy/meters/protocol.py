"""What a meter is: ``start()``, then ``stop()`` returns the joules measured in between.

A meter measures one or more *domains* of the machine it runs on, each named for what it
covers (:data:`DOMAINS`): the CPU package, DRAM, a GPU, or the whole board at its supply.
A :class:`Reading` says which domains it holds and how they were measured, so that a report
can show a figure beside the words that qualify it ("RAPL package-0 counter", "INA260 at the
5 V input, sampled every 10 ms").

A meter that cannot work on this machine (no RAPL, no NVML, no sensor on the bus) says why
through :meth:`Meter.available`, without raising; :meth:`Meter.start` on such a meter raises
:class:`MeterUnavailableError` with the same reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ..errors import EdgeEnergyError

__all__ = [
    "BOARD",
    "CPU_PACKAGE",
    "DOMAINS",
    "DRAM",
    "GPU",
    "Availability",
    "Meter",
    "MeterError",
    "MeterUnavailableError",
    "Reading",
]

CPU_PACKAGE = "cpu-package"
"""The processor package (cores, caches, uncore), e.g. RAPL's ``package-N`` zones."""
DRAM = "dram"
"""Main memory, e.g. RAPL's ``dram`` zone."""
GPU = "gpu"
"""A GPU, e.g. NVML's board power or a Jetson's GPU rail."""
BOARD = "board"
"""The whole board at its power input: what the energy model's profiles describe."""

DOMAINS: tuple[str, ...] = (CPU_PACKAGE, DRAM, GPU, BOARD)
"""Every domain a reading may hold."""


class MeterError(EdgeEnergyError):
    """A meter that failed while measuring (a counter that could not be read)."""


class MeterUnavailableError(MeterError):
    """A meter that cannot measure on this machine; the message says why."""


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a meter can measure here; ``reason`` says why not (or what it will read)."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


@dataclasses.dataclass(frozen=True)
class Reading:
    """The energy measured between ``start()`` and ``stop()``.

    ``joules`` maps each measured domain (:data:`DOMAINS`) to joules; ``duration_s`` is the
    wall time between the two calls; ``how`` says what was read, in words.
    """

    meter: str
    joules: Mapping[str, float]
    duration_s: float
    how: str

    def __post_init__(self) -> None:
        unknown = sorted(set(self.joules) - set(DOMAINS))
        if unknown:
            raise ValueError(f"reading of meter {self.meter!r} holds unknown domain(s) "
                             f"{', '.join(unknown)}; domains are {', '.join(DOMAINS)}")
        if not self.joules:
            raise ValueError(f"reading of meter {self.meter!r} holds no domain")

    @property
    def total_j(self) -> float:
        """The machine's joules as well as this reading tells: the board when measured (it
        includes everything else), otherwise the sum of the separate domains."""
        if BOARD in self.joules:
            return self.joules[BOARD]
        return sum(self.joules.values())

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains measured, in the order of :data:`DOMAINS`."""
        return tuple(d for d in DOMAINS if d in self.joules)


@runtime_checkable
class Meter(Protocol):
    """A power meter of the machine this process runs on (one that holds a connection may
    also have ``close()``, which the plugin calls at the session's end)."""

    name: str

    def available(self) -> Availability:
        """Whether it can measure here, and if not, why (never raises)."""
        ...

    def start(self) -> None:
        """Begin a measurement (:class:`MeterUnavailableError` when it cannot)."""
        ...

    def stop(self) -> Reading:
        """End the measurement begun by :meth:`start` and return what it measured."""
        ...
