"""Measure the energy of one inference with a meter: repeated windows, an idle baseline.

How a figure is made (:func:`measure_energy`):

1. The inference runs once to warm up, and once more timed: a *window* is then ``runs``
   back-to-back inferences, enough to last ``min_window_s`` (and at least ten times the
   meter's ``resolution_s`` when it declares one).
2. Idle baseline, measured the same way: windows of the same length in which this process
   sleeps, repeated until the idle power's relative standard error (standard deviation of
   the windows / sqrt(n) / mean) is below ``target_rse``, with at least ``min_windows`` and
   at most ``max_windows`` windows.
3. Inference windows, repeated by the same rule on the energy per inference *above idle*:
   each window's reading minus the idle power times that window's own duration, over the
   inferences it ran. A window that took longer (another process held a core) waited at
   idle power for longer; subtracting per window keeps that wait out of the spread.
4. The result is the mean of those windows: the energy *above idle* that the inference
   cost. Its relative standard error combines both series; ``stable`` says whether both
   reached ``target_rse`` before ``max_windows`` or the time budget ``max_seconds`` ran out.

The meter measures the machine this process runs on: with the local backend every device of
the cluster runs here, so the figure is the whole machine's for the whole partitioned
inference, one measured "device" for the cluster (:data:`LOCAL_SCOPE`).

In step with other processes (``together``, a :class:`Together`): under the gloo backend every
rank measures its own share of one inference, which it cannot run without the others. The
ranks then agree on one window length (the slowest rank's run time and the coarsest meter
decide it), and after each window on whether to go on: every rank repeats windows until every
rank's series has met the rule, so all ranks sleep through the same idle windows and run the
same inference windows (:mod:`.ranks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .protocol import Meter, MeterError, Reading

__all__ = [
    "LOCAL_SCOPE",
    "MeasuredEnergy",
    "Series",
    "StopRule",
    "Together",
    "measure_energy",
    "relative_standard_error",
    "repeat_windows",
]

LOCAL_SCOPE = "this host (local backend: every device of the cluster runs here)"
"""What a measurement covers when the local backend runs the partitioned inference."""


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When to stop repeating windows (see the module docstring)."""

    target_rse: float = 0.02
    min_windows: int = 3
    max_windows: int = 30
    min_window_s: float = 0.2
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.target_rse < 1:
            raise ValueError(f"target_rse must be between 0 and 1, got {self.target_rse}")
        if not 2 <= self.min_windows <= self.max_windows:
            raise ValueError(f"need 2 <= min_windows <= max_windows, got {self.min_windows}, "
                             f"{self.max_windows}")
        if not (self.min_window_s > 0 and self.max_seconds > 0):
            raise ValueError("min_window_s and max_seconds must be positive")

    def describe(self) -> str:
        """The rule in words."""
        return (f"windows of >= {self.min_window_s:g} s repeated until the relative standard "
                f"error < {self.target_rse:.0%} ({self.min_windows} to {self.max_windows} "
                f"windows, at most {self.max_seconds:g} s per series)")


class Together(Protocol):
    """Agreement with the other processes that measure at the same time (every one calls
    each method at the same point, and all get the same answer)."""

    def max(self, value: float) -> float:
        """The largest of every process's ``value``."""
        ...

    def all(self, flag: bool) -> bool:
        """Whether every process's ``flag`` is true."""
        ...


def relative_standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean over the mean's magnitude (inf when undefined)."""
    if len(values) < 2:
        return math.inf
    mean = statistics.fmean(values)
    if mean == 0:
        return math.inf
    return statistics.stdev(values) / math.sqrt(len(values)) / abs(mean)


@dataclasses.dataclass(frozen=True)
class Series:
    """Repeated windows: one value per window, and whether the rule was met."""

    values: tuple[float, ...]
    seconds: tuple[float, ...]
    stable: bool

    @property
    def mean(self) -> float:
        """Mean over the windows."""
        return statistics.fmean(self.values)

    @property
    def rse(self) -> float:
        """Relative standard error of :attr:`mean`."""
        return relative_standard_error(self.values)

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`mean` (0 for one window)."""
        if len(self.values) < 2:
            return 0.0
        return statistics.stdev(self.values) / math.sqrt(len(self.values))


def repeat_windows(window: Callable[[], tuple[float, float]], rule: StopRule,
                   clock: Callable[[], float], together: Together | None = None) -> Series:
    """Call ``window`` (returning a value and its seconds) until ``rule`` stops it; with
    ``together``, until it stops every process's series (``stable``: this one met it)."""
    values: list[float] = []
    seconds: list[float] = []
    deadline = clock() + rule.max_seconds
    while True:
        value, duration = window()
        values.append(value)
        seconds.append(duration)
        enough = len(values) >= rule.min_windows
        met = enough and relative_standard_error(values) < rule.target_rse
        over = len(values) >= rule.max_windows or (enough and clock() >= deadline)
        done = met or over
        if together is not None:
            done = together.all(done)
        if done:
            return Series(tuple(values), tuple(seconds), met)


@dataclasses.dataclass(frozen=True)
class MeasuredEnergy:
    """The measured energy of one inference, above idle, and how it was measured."""

    meter: str
    how: str
    scope: str
    domains: tuple[str, ...]
    runs_per_window: int
    seconds_per_run: float
    idle: Series  # watts per window
    active: Series  # joules per inference above idle, per window
    rule: StopRule

    @property
    def idle_w(self) -> float:
        """Idle power of the machine, watts."""
        return self.idle.mean

    @property
    def net_j(self) -> float:
        """Joules per inference above idle: what the inference cost."""
        return self.active.mean

    @property
    def gross_j(self) -> float:
        """Joules per inference, idle included."""
        return self.net_j + self.idle_w * self.seconds_per_run

    @property
    def rse(self) -> float:
        """Relative standard error of :attr:`net_j`, both series' errors combined."""
        if self.net_j == 0:
            return math.inf
        error = math.hypot(self.active.standard_error,
                           self.idle.standard_error * self.seconds_per_run)
        return error / abs(self.net_j)

    @property
    def stable(self) -> bool:
        """Whether both series met the stopping rule's target."""
        return self.idle.stable and self.active.stable

    def describe(self) -> str:
        """How the figure was measured, in one line."""
        return (f"{self.how}; {len(self.active.values)} windows of {self.runs_per_window} "
                f"inference(s) minus an idle baseline of {len(self.idle.values)} windows "
                f"({self.idle_w:.3g} W); {self.rule.describe()}"
                f"{'' if self.stable else '; NOT STABLE: target not reached'}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "meter": self.meter, "how": self.how, "scope": self.scope,
            "domains": list(self.domains), "runs_per_window": self.runs_per_window,
            "seconds_per_run": self.seconds_per_run, "idle_w": self.idle_w,
            "gross_j": self.gross_j, "net_j": self.net_j,
            "rse": self.rse if math.isfinite(self.rse) else None,
            "stable": self.stable, "idle_windows": len(self.idle.values),
            "active_windows": len(self.active.values), "description": self.describe(),
        }


def _window_reading(meter: Meter, body: Callable[[], None]) -> Reading:
    meter.start()
    try:
        body()
    except BaseException:
        with contextlib.suppress(MeterError):
            meter.stop()
        raise
    return meter.stop()


def measure_energy(run: Callable[[], object], meter: Meter, rule: StopRule | None = None,
                   scope: str = LOCAL_SCOPE, clock: Callable[[], float] = time.perf_counter,
                   sleep: Callable[[float], None] = time.sleep,
                   together: Together | None = None) -> MeasuredEnergy:
    """Measure the energy of one call of ``run`` with ``meter`` (see the module docstring);
    ``together``: in step with the other processes that measure their share of it.

    Raises :class:`~.protocol.MeterUnavailableError` when the meter cannot measure here, and
    :class:`~.protocol.MeterError` when it fails while measuring.
    """
    rule = rule or StopRule()
    run()  # warm-up: first-call costs (allocation, lazy initialisation) are not the inference
    t0 = clock()
    run()
    one_run_s = max(clock() - t0, 1e-9)
    min_window_s = max(rule.min_window_s, 10 * float(getattr(meter, "resolution_s", 0.0)))
    if together is not None:  # one window length for all: the slowest run, the coarsest meter
        one_run_s = together.max(one_run_s)
        min_window_s = together.max(min_window_s)
    runs = max(1, math.ceil(min_window_s / one_run_s))
    window_s = runs * one_run_s
    last: list[Reading] = []

    def idle_window() -> tuple[float, float]:
        reading = _window_reading(meter, lambda: sleep(window_s))
        last[:] = [reading]
        return reading.total_j / reading.duration_s, reading.duration_s

    idle = repeat_windows(idle_window, rule, clock, together)
    idle_w = idle.mean

    def active_window() -> tuple[float, float]:
        def body() -> None:
            for _ in range(runs):
                run()
        reading = _window_reading(meter, body)
        last[:] = [reading]
        return (reading.total_j - idle_w * reading.duration_s) / runs, reading.duration_s

    active = repeat_windows(active_window, rule, clock, together)
    reading = last[0]
    return MeasuredEnergy(
        meter=reading.meter, how=reading.how, scope=scope, domains=reading.domains,
        runs_per_window=runs, seconds_per_run=statistics.fmean(active.seconds) / runs,
        idle=idle, active=active, rule=rule)
