"""``calibrate --meter NAME``: a profile's ``idle_w`` and ``active_w`` from a power meter.

Both figures are mean powers over repeated windows, stopped by the same rule as
:func:`~.measure.measure_energy` (:class:`~.measure.StopRule`):

- ``idle_w``: windows in which this process sleeps (the machine as idle as the user left it);
- ``active_w``: windows in which the ResNet-18 3x3 convolutions that ``calibrate`` times for
  ``macs_per_s`` run back to back on torch's threads (every core, by default).

Each figure comes with the line the profile shows above it: the meter, what it read, which
domains (a meter that does not read the whole board, e.g. RAPL without ``psys``, gives an
under-estimate of board power, and the line says so), the windows and their relative
standard error. The per-byte network energies need two hosts: :mod:`.network`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .measure import Series, StopRule, repeat_windows
from .protocol import BOARD, Meter, MeterError, MeterUnavailableError
from .registry import get_meter

__all__ = ["PowerFigure", "conv_load", "measure_power", "measure_profile_power"]


@dataclasses.dataclass(frozen=True)
class PowerFigure:
    """A mean power and how it was measured."""

    field: str
    watts: float
    series: Series
    domains: tuple[str, ...]
    how: str
    load: str

    def comment(self, meter: str) -> str:
        """The profile line saying how the figure was measured."""
        board = "" if BOARD in self.domains else (
            f" NOT THE WHOLE BOARD: the meter read {', '.join(self.domains)} only, so this "
            "under-estimates the power at the supply.")
        stable = "" if self.series.stable else " NOT STABLE: the target was not reached."
        return (f"Measured with meter {meter!r} ({self.how}): mean power over "
                f"{len(self.series.values)} windows of {self.load} "
                f"(relative standard error {self.series.rse:.2%}).{board}{stable}")


def conv_load() -> Callable[[], None]:
    """One pass of :data:`~pytest_edgeenergy.calibrate.CONV_LAYERS` (torch, inference mode)."""
    import torch

    from ..calibrate import CONV_LAYERS

    layers = [(torch.nn.Conv2d(s.in_channels, s.out_channels, s.kernel,
                               padding=s.kernel // 2).eval(),
               torch.randn(1, s.in_channels, s.size, s.size)) for s in CONV_LAYERS]

    def run() -> None:
        with torch.inference_mode():
            for conv, x in layers:
                conv(x)

    return run


def measure_power(meter: Meter, field: str, load: Callable[[], None] | None, rule: StopRule,
                  clock: Callable[[], float] = time.perf_counter,
                  sleep: Callable[[float], None] = time.sleep) -> PowerFigure:
    """Mean watts over windows of ``rule.min_window_s``: sleeping (``load`` None) or running
    ``load`` back to back until the window is over."""
    domains: list[tuple[str, ...]] = []
    hows: list[str] = []

    def window() -> tuple[float, float]:
        meter.start()
        if load is None:
            sleep(rule.min_window_s)
        else:
            end = clock() + rule.min_window_s
            while clock() < end:
                load()
        reading = meter.stop()
        domains[:] = [reading.domains]
        hows[:] = [reading.how]
        return reading.total_j / reading.duration_s, reading.duration_s

    series = repeat_windows(window, rule, clock)
    what = ("idle (this process asleep)" if load is None
            else "the calibration conv2d layers running back to back")
    return PowerFigure(field, series.mean, series, domains[0], hows[0],
                       f"{rule.min_window_s:g} s {what}")


def measure_profile_power(spec: str, seconds: float,
                          load: Callable[[], None] | None = None) -> dict[str, tuple[float, str]]:
    """``{"idle_w": (watts, comment), "active_w": (watts, comment)}`` from the meter ``spec``
    names, spending at most about ``seconds`` on each; MeterUnavailableError when it cannot
    measure here."""
    meter = get_meter(spec)
    status = meter.available()
    if not status:
        raise MeterUnavailableError(f"--meter {spec!r} is unavailable here: {status.reason}")
    resolution = float(getattr(meter, "resolution_s", 0.0))
    rule = StopRule(min_window_s=max(0.25, 10 * resolution), max_seconds=max(seconds, 1.0))
    busy = load or conv_load()
    idle = measure_power(meter, "idle_w", None, rule)
    active = measure_power(meter, "active_w", busy, rule)
    if active.watts < idle.watts:
        raise MeterError(
            f"--meter {spec!r} measured active_w {active.watts:.4g} W below idle_w "
            f"{idle.watts:.4g} W: the meter cannot tell the load from idle here (too coarse, "
            "or another program was busy while idle was measured); nothing was written")
    return {f.field: (f.watts, f.comment(spec)) for f in (idle, active)}

