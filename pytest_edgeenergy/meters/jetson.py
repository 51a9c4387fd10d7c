"""A Jetson's power rails through ``jtop`` (the ``jetson-stats`` package, with its service).

``jtop().power`` is ``{"rail": {NAME: {"power": mW, ...}}, "tot": {"power": mW, ...}}``:
``tot`` is the board input (``board``), rails named for the GPU alone (``VDD_GPU_SOC``,
``POM_5V_GPU``) add to ``gpu`` and rails named for the CPU alone (``VDD_CPU_CV`` excluded:
shared rails are not split) add to ``cpu-package``. The values are sampled on a thread and
integrated (:mod:`.sampling`); jtop refreshes them every ``interval`` of its own (0.5 s by
default), so only windows many times longer than that give a meaningful figure
(:attr:`JetsonMeter.resolution_s`).

The jtop factory is injectable (a fake in tests); by default ``jtop.jtop`` is imported, and
its absence, or a jtop service that does not answer, makes the meter unavailable.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from .protocol import (
    BOARD,
    CPU_PACKAGE,
    GPU,
    Availability,
    MeterError,
    MeterUnavailableError,
    Reading,
)
from .sampling import SamplingMeter

__all__ = ["JetsonMeter", "rail_domain"]

DEFAULT_INTERVAL_S = 0.1
"""How often the rails are sampled."""


def rail_domain(rail: str) -> str | None:
    """The domain a rail adds to, from its name; None for shared or other rails."""
    upper = rail.upper()
    has_gpu, has_cpu = "GPU" in upper, "CPU" in upper
    if has_gpu and not has_cpu:
        return GPU
    if has_cpu and not has_gpu and "CV" not in upper:
        return CPU_PACKAGE
    return None


def _default_factory() -> Any:
    return importlib.import_module("jtop").jtop()


def _watts(power: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    total = power.get("tot")
    if isinstance(total, Mapping) and "power" in total:
        out[BOARD] = float(total["power"]) / 1e3
    for rail, values in (power.get("rail") or {}).items():
        domain = rail_domain(str(rail))
        if domain is not None and isinstance(values, Mapping) and "power" in values:
            out[domain] = out.get(domain, 0.0) + float(values["power"]) / 1e3
    return out


class JetsonMeter(SamplingMeter):
    """Energy of a Jetson's board and rails from jtop (see the module docstring)."""

    name = "jetson"
    resolution_s = 0.5

    def __init__(self, jtop_factory: Callable[[], Any] | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(interval_s, clock)
        self._factory = jtop_factory or _default_factory
        self._jtop: Any = None

    def _open(self) -> Any:
        if self._jtop is not None:
            return self._jtop
        try:
            handle = self._factory()
        except ImportError:
            raise MeterUnavailableError("jetson: jtop is not installed (pip install jetson-stats, "
                                   "on the Jetson)") from None
        try:
            handle.start()
            ok = bool(handle.ok())
        except Exception as exc:  # jtop raises its own JtopException when the service is down
            raise MeterUnavailableError(f"jetson: the jtop service does not answer ({exc}); start "
                                   "it with `sudo systemctl start jtop.service`") from None
        if not ok:
            raise MeterUnavailableError("jetson: jtop reports no data (is this a Jetson?)")
        if not _watts(handle.power):
            handle.close()
            raise MeterUnavailableError("jetson: jtop reports no power rail on this board")
        self._jtop = handle
        return handle

    def available(self) -> Availability:
        """Whether jtop answers with power rails here."""
        try:
            handle = self._open()
        except MeterUnavailableError as exc:
            return Availability(False, str(exc))
        domains = ", ".join(sorted(_watts(handle.power)))
        return Availability(True, f"jetson: jtop rails ({domains})")

    def _read(self) -> dict[str, float]:
        assert self._jtop is not None
        watts = _watts(self._jtop.power)
        if not watts:
            raise MeterError("jetson: jtop stopped reporting power")
        return watts

    def start(self) -> None:
        """Begin sampling the rails."""
        self._open()
        self._start_sampling(self._read)

    def stop(self) -> Reading:
        """Joules per domain since :meth:`start`."""
        joules, duration, count = self._stop_sampling()
        return Reading(self.name, joules, duration, f"jtop power rails {self._sampled(count)}")

    def close(self) -> None:
        """Close the jtop connection."""
        if self._jtop is not None:
            self._jtop.close()
            self._jtop = None
