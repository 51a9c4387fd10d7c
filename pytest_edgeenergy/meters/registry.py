"""Meters by name: ``rapl``, ``nvml``, ``jetson``, ``ina219``, ``ina260``, and any registered.

A meter is named as ``NAME`` or ``NAME:key=value,key=value`` (e.g.
``ina219:bus=1,address=0x41,shunt_ohm=0.05``); the values are handed to the meter's factory
as text and parsed there. :func:`register_meter` adds a meter (a plugin's, or a fake in
tests); :func:`availability` tells whether a named meter can measure here, and why not.

A meter registered from a ``conftest.py`` exists only in the process that imported it. The
processes of the gloo backend (its worker ranks on this host, and ``python -m
pytest_edgeenergy worker`` on other hosts) find their meters by name too: the modules named in
the environment variable :data:`METER_MODULES_ENV` (comma-separated, e.g.
``EDGEENERGY_METER_MODULES=mymeters``) are imported before the first look-up in every
process, and register theirs with :func:`register_meter` when imported.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import EdgeEnergyError
from .ina import DEFAULT_ADDRESS, DEFAULT_BUS, Ina219Meter, Ina260Meter
from .jetson import JetsonMeter
from .nvml import NvmlMeter
from .protocol import Availability, Meter
from .rapl import DEFAULT_POWERCAP, RaplMeter

__all__ = [
    "METER_MODULES_ENV",
    "MeterSpecError",
    "availability",
    "get_meter",
    "import_meter_modules",
    "meter_names",
    "parse_meter_spec",
    "register_meter",
    "unregister_meter",
]

METER_MODULES_ENV = "EDGEENERGY_METER_MODULES"
"""The environment variable naming modules that register meters (imported in every process
before the first look-up of a meter)."""

MeterFactory = Callable[..., Meter]
"""Builds a meter from its parameters (keyword arguments, each as text)."""


class MeterSpecError(EdgeEnergyError):
    """An unknown meter name or a bad meter parameter."""


def _int(name: str, key: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise MeterSpecError(f"meter {name!r}: {key}={text!r} is not a whole number "
                             "(decimal, or hex as 0x40)") from None


def _positive(name: str, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise MeterSpecError(f"meter {name!r}: {key}={text!r} is not a positive number")
    return value


def _rapl(root: str = str(DEFAULT_POWERCAP)) -> Meter:
    return RaplMeter(Path(root))


def _nvml(interval_s: str | None = None) -> Meter:
    if interval_s is None:
        return NvmlMeter()
    return NvmlMeter(interval_s=_positive("nvml", "interval_s", interval_s))


def _jetson(interval_s: str | None = None) -> Meter:
    if interval_s is None:
        return JetsonMeter()
    return JetsonMeter(interval_s=_positive("jetson", "interval_s", interval_s))


def _ina219(bus: str = str(DEFAULT_BUS), address: str = hex(DEFAULT_ADDRESS),
            shunt_ohm: str = "0.1") -> Meter:
    return Ina219Meter(bus=_int("ina219", "bus", bus), address=_int("ina219", "address", address),
                       shunt_ohm=_positive("ina219", "shunt_ohm", shunt_ohm))


def _ina260(bus: str = str(DEFAULT_BUS), address: str = hex(DEFAULT_ADDRESS)) -> Meter:
    return Ina260Meter(bus=_int("ina260", "bus", bus), address=_int("ina260", "address", address))


_BUILTIN: dict[str, MeterFactory] = {
    "rapl": _rapl, "nvml": _nvml, "jetson": _jetson, "ina219": _ina219, "ina260": _ina260,
}
_METERS: dict[str, MeterFactory] = dict(_BUILTIN)


_IMPORTED: set[str] = set()


def import_meter_modules() -> None:
    """Import the modules named in :data:`METER_MODULES_ENV` (each once per process); a
    module that cannot be imported is a :class:`MeterSpecError` naming it."""
    for module in filter(None, (m.strip() for m in
                                os.environ.get(METER_MODULES_ENV, "").split(","))):
        if module in _IMPORTED:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise MeterSpecError(f"{METER_MODULES_ENV}: cannot import meter module {module!r} "
                                 f"({type(exc).__name__}: {exc})") from None
        _IMPORTED.add(module)


def register_meter(name: str, factory: MeterFactory) -> None:
    """Make ``factory`` the meter called ``name`` (replacing one of that name)."""
    _METERS[name] = factory


def unregister_meter(name: str) -> None:
    """Forget a registered meter (a built-in one comes back)."""
    _METERS.pop(name, None)
    if name in _BUILTIN:
        _METERS[name] = _BUILTIN[name]


def meter_names() -> list[str]:
    """Every meter name, sorted."""
    return sorted(_METERS)


def parse_meter_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"ina219:address=0x41"`` -> ``("ina219", {"address": "0x41"})``."""
    name, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise MeterSpecError(f"meter {spec!r}: parameter {item!r} is not key=value")
        params[key.strip()] = value.strip()
    if not name:
        raise MeterSpecError(f"meter {spec!r} has no name; meters: {', '.join(meter_names())}")
    return name, params


def get_meter(spec: str) -> Meter:
    """The meter ``spec`` names (``NAME`` or ``NAME:key=value,...``); MeterSpecError for an
    unknown name or parameter. The meter may still be unavailable here: ask it."""
    name, params = parse_meter_spec(spec)
    import_meter_modules()
    factory = _METERS.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, meter_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MeterSpecError(f"unknown meter {name!r}{hint}; meters: {', '.join(meter_names())}")
    try:
        return factory(**params)
    except TypeError as exc:
        raise MeterSpecError(f"meter {name!r}: bad parameters {params}: {exc}") from None
    except ValueError as exc:
        raise MeterSpecError(f"meter {name!r}: {exc}") from None


def availability(spec: str) -> Availability:
    """Whether the meter ``spec`` names can measure here (unknown names raise)."""
    return get_meter(spec).available()
