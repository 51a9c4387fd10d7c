"""Energy from a power reading: sample it on a thread, integrate with the trapezoid rule.

Meters whose hardware reports power but no energy counter (an INA219/INA260, a Jetson's
rails, NVML before Volta) use a :class:`PowerSampler`: ``start()`` takes a first sample and
starts a thread that samples every ``interval_s``; ``stop()`` takes a last sample and returns
the integral of the samples over time per domain.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from .protocol import MeterError

__all__ = ["PowerSampler", "SamplingMeter", "integrate_power"]

PowerRead = Callable[[], Mapping[str, float]]
"""A function returning watts per domain, now."""


def integrate_power(samples: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Joules per domain from ``(time_s, watts per domain)`` samples, trapezoid rule.

    A domain missing from a sample is left out of the intervals that touch that sample.
    """
    out: dict[str, float] = {}
    for (t0, w0), (t1, w1) in itertools.pairwise(samples):
        dt = t1 - t0
        for domain in w0.keys() & w1.keys():
            out[domain] = out.get(domain, 0.0) + 0.5 * (w0[domain] + w1[domain]) * dt
    return out


class PowerSampler:
    """Samples ``read`` every ``interval_s`` on a daemon thread between start() and stop()."""

    def __init__(self, read: PowerRead, interval_s: float,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not interval_s > 0:
            raise ValueError(f"sampling interval must be positive, got {interval_s!r}")
        self._read = read
        self._interval_s = interval_s
        self._clock = clock
        self._samples: list[tuple[float, Mapping[str, float]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _sample(self) -> None:
        watts = self._read()
        self._samples.append((self._clock(), dict(watts)))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._sample()
            except BaseException as exc:  # handed to stop(), which raises it in the caller
                self._error = exc
                return

    def start(self) -> None:
        """Take the first sample and begin sampling."""
        if self._thread is not None:
            raise RuntimeError("the power sampler is already running")
        self._samples = []
        self._error = None
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="edgeenergy-power-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> tuple[dict[str, float], float, int]:
        """Take the last sample; return (joules per domain, seconds covered, sample count)."""
        if self._thread is None:
            raise RuntimeError("the power sampler was not started")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        self._sample()
        samples = self._samples
        return integrate_power(samples), samples[-1][0] - samples[0][0], len(samples)


class SamplingMeter:
    """The part of a meter that samples power: a :class:`PowerSampler` between ``start()`` and
    ``stop()``. A subclass opens its sensor, then calls :meth:`_start_sampling` with its read
    function, and :meth:`_stop_sampling` for the joules, seconds and sample count."""

    name = "meter"

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._sampler: PowerSampler | None = None

    def _start_sampling(self, read: PowerRead) -> None:
        self._sampler = PowerSampler(read, self._interval_s, self._clock)
        self._sampler.start()

    def _stop_sampling(self) -> tuple[dict[str, float], float, int]:
        if self._sampler is None:
            raise MeterError(f"{self.name}: stop() without start()")
        sampler, self._sampler = self._sampler, None
        return sampler.stop()

    def _sampled(self, count: int) -> str:
        """How the energy was found, for the reading's description."""
        return f"sampled every {self._interval_s * 1e3:g} ms ({count} samples), integrated"
