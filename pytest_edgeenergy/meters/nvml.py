"""NVIDIA GPUs through NVML (the ``pynvml`` module of the ``nvidia-ml-py`` package).

Two ways to measure, chosen per machine at ``start()``:

- the total energy counter, ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the
  driver was loaded; Volta and newer): the difference between two reads;
- otherwise the board power, ``nvmlDeviceGetPowerUsage`` (milliwatts), sampled on a thread
  and integrated (:mod:`.sampling`).

Every GPU NVML lists is summed into the ``gpu`` domain. The module is injectable (a fake in
tests); by default ``pynvml`` is imported, and its absence makes the meter unavailable.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .protocol import GPU, Availability, MeterError, MeterUnavailableError, Reading
from .sampling import SamplingMeter

__all__ = ["NvmlMeter"]

DEFAULT_INTERVAL_S = 0.02
"""Power sampling interval when there is no energy counter (NVML updates power every
20-100 ms on recent GPUs)."""


def _import_pynvml() -> ModuleType:
    return importlib.import_module("pynvml")


class NvmlMeter(SamplingMeter):
    """Energy of the NVIDIA GPUs of this machine (see the module docstring)."""

    name = "nvml"

    def __init__(self, nvml: Any = None, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(interval_s, clock)
        self._nvml = nvml
        self._handles: list[Any] | None = None
        self._counter_start: tuple[float, list[int]] | None = None

    def _module(self) -> Any:
        if self._nvml is None:
            try:
                self._nvml = _import_pynvml()
            except ImportError:
                raise MeterUnavailableError(
                    "NVML: the pynvml module is not installed (pip install nvidia-ml-py)"
                ) from None
        return self._nvml

    def _open(self) -> list[Any]:
        if self._handles is not None:
            return self._handles
        nvml = self._module()
        try:
            nvml.nvmlInit()
            count = int(nvml.nvmlDeviceGetCount())
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except nvml.NVMLError as exc:
            raise MeterUnavailableError(f"NVML: cannot initialise ({exc}): no NVIDIA driver or "
                                   "GPU on this machine") from None
        if not handles:
            raise MeterUnavailableError("NVML: the driver lists no GPU")
        self._handles = handles
        return handles

    def available(self) -> Availability:
        """Whether NVML lists a GPU here."""
        try:
            handles = self._open()
        except MeterUnavailableError as exc:
            return Availability(False, str(exc))
        way = "energy counter" if self._counters(handles) is not None else "power sampling"
        return Availability(True, f"NVML: {len(handles)} GPU(s), {way}")

    def _counters(self, handles: list[Any]) -> list[int] | None:
        nvml = self._module()
        try:
            return [int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in handles]
        except nvml.NVMLError:  # not supported before Volta
            return None

    def _power_w(self) -> dict[str, float]:
        nvml = self._module()
        assert self._handles is not None
        try:
            return {GPU: sum(nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1e3}
        except nvml.NVMLError as exc:
            raise MeterError(f"NVML: cannot read the power: {exc}") from None

    def start(self) -> None:
        """Read the energy counters, or begin sampling the power."""
        handles = self._open()
        counters = self._counters(handles)
        if counters is not None:
            self._counter_start = (self._clock(), counters)
            return
        self._start_sampling(self._power_w)

    def stop(self) -> Reading:
        """Joules of every GPU since :meth:`start`."""
        if self._counter_start is not None:
            t0, begin = self._counter_start
            self._counter_start = None
            assert self._handles is not None
            end = self._counters(self._handles)
            if end is None:
                raise MeterError("NVML: the energy counter stopped answering")
            mj = sum(b - a for a, b in zip(begin, end, strict=True))
            return Reading(self.name, {GPU: mj / 1e3}, self._clock() - t0,
                           f"NVML total energy counters of {len(end)} GPU(s)")
        joules, duration, count = self._stop_sampling()
        return Reading(self.name, {GPU: joules.get(GPU, 0.0)}, duration,
                       f"NVML power of {len(self._handles or [])} GPU(s) {self._sampled(count)}")

    def close(self) -> None:
        """Shut NVML down if it was initialised here."""
        if self._handles is not None:
            self._handles = None
            self._module().nvmlShutdown()
