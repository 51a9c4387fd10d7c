"""Power meters of the machine that runs the inference, and measuring an inference with one.

``start()`` / ``stop()`` -> :class:`Reading` (joules per domain: CPU package, DRAM, GPU,
board). Built-in meters: ``rapl`` (:mod:`.rapl`), ``nvml`` (:mod:`.nvml`), ``jetson``
(:mod:`.jetson`), ``ina219`` and ``ina260`` (:mod:`.ina`); :func:`get_meter` builds one by
name, :func:`register_meter` adds one. :func:`measure_energy` measures one inference above
an idle baseline until the figure is stable (:mod:`.measure`); under the gloo backend every
rank measures its own share in step with the others (:mod:`.ranks`). ``calibrate --meter``
fills a profile's powers (:mod:`.calibrate`) and, with two hosts, its per-byte network
energies (:mod:`.network`).
"""

from __future__ import annotations

from .measure import LOCAL_SCOPE, MeasuredEnergy, StopRule, measure_energy
from .protocol import (
    BOARD,
    CPU_PACKAGE,
    DOMAINS,
    DRAM,
    GPU,
    Availability,
    Meter,
    MeterError,
    MeterUnavailableError,
    Reading,
)
from .registry import (
    MeterSpecError,
    availability,
    get_meter,
    meter_names,
    parse_meter_spec,
    register_meter,
    unregister_meter,
)

__all__ = [
    "BOARD",
    "CPU_PACKAGE",
    "DOMAINS",
    "DRAM",
    "GPU",
    "LOCAL_SCOPE",
    "Availability",
    "MeasuredEnergy",
    "Meter",
    "MeterError",
    "MeterSpecError",
    "MeterUnavailableError",
    "Reading",
    "StopRule",
    "availability",
    "get_meter",
    "measure_energy",
    "meter_names",
    "parse_meter_spec",
    "register_meter",
    "unregister_meter",
]
