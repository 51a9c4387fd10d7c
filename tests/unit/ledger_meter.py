"""A machine on a virtual clock with an energy ledger, and a meter that reads the ledger:
what the measuring tests measure, without real time or hardware."""

from __future__ import annotations

import itertools

from pytest_edgeenergy.meters import BOARD, Availability, Reading


class FakeMachine:
    """A clock, a power draw and an energy ledger: idle_w while sleeping, active_w while
    an inference runs (each run_s long); the meter reads the ledger."""

    def __init__(self, idle_w: float, active_w: float, run_s: float,
                 jitter: tuple[float, ...] = (0.0,)) -> None:
        self.t = 0.0
        self.energy_j = 0.0
        self.idle_w, self.active_w, self.run_s = idle_w, active_w, run_s
        self._jitter = itertools.cycle(jitter)
        self.runs = 0

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.energy_j += self.idle_w * seconds

    def run(self) -> None:
        self.runs += 1
        self.t += self.run_s
        self.energy_j += (self.active_w + next(self._jitter)) * self.run_s


class LedgerMeter:
    """Reads a :class:`FakeMachine`'s ledger: the joules and seconds between start and stop."""

    name = "ledger"

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine
        self._start = (0.0, 0.0)

    def available(self) -> Availability:
        return Availability(True, "a ledger")

    def start(self) -> None:
        self._start = (self.machine.t, self.machine.energy_j)

    def stop(self) -> Reading:
        t0, e0 = self._start
        return Reading(self.name, {BOARD: self.machine.energy_j - e0}, self.machine.t - t0,
                       "a ledger")
