"""Scenarios: the conditions an estimate assumes, as documented choices.

A :class:`Scenario` says what the devices are doing and how they are connected:

* ``workload``: ``single`` (one isolated image: today's rule) or ``stream`` (images back to
  back, or arriving at ``fps`` frames per second): per-image energy in steady state.
* ``power``: ``always-on`` (every device draws at least ``idle_w`` all the time: today's rule)
  or ``sleep`` (outside its active intervals a device sleeps at ``sleep_w`` when that is
  cheaper, and pays ``wake_j`` and ``wake_s`` each time it is woken).
* ``network``: ``half-duplex`` (switched links, one transfer at a time per interface: today's
  rule), ``full-duplex`` (an interface sends and receives at once) or ``shared`` (one medium
  whose airtime every transfer of the cluster shares, as Wi-Fi; ``relay=ap`` sends every
  transfer through the access point, twice the airtime, ``relay=direct`` does not).
* ``compute``: ``uniform`` (one ``macs_per_s`` for every layer: today's rule) or ``per-kind``
  (the profile's ``[macs_per_s_by_kind]`` table where present).

The default scenario reproduces the estimates made before scenarios existed, number for
number. Its text form, ``workload=single,power=always-on,network=half-duplex``, is what reports
and baselines record; :func:`parse_scenario` reads that form back (the formulas are in
``docs/energy-model.md``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Final

from .errors import EnergyError

__all__ = [
    "COMPUTE_MODES",
    "DEFAULT_SCENARIO",
    "NETWORKS",
    "POWER_MODES",
    "RELAYS",
    "WORKLOADS",
    "Scenario",
    "as_scenario",
    "parse_scenario",
]

WORKLOADS: Final = ("single", "stream")
"""``single``: one isolated image. ``stream``: images back to back (or at ``fps``)."""

POWER_MODES: Final = ("always-on", "sleep")
"""``always-on``: idle devices draw ``idle_w``. ``sleep``: they sleep when that is cheaper."""

NETWORKS: Final = ("half-duplex", "full-duplex", "shared")
"""How transfers share the network: per interface (half or full duplex), or one medium."""

RELAYS: Final = ("ap", "direct")
"""On a shared medium: through an access point (two hops of airtime) or station to station."""

COMPUTE_MODES: Final = ("uniform", "per-kind")
"""One ``macs_per_s`` for every layer, or the profile's per-kind table where present."""

_CHOICES: Final = {"workload": WORKLOADS, "power": POWER_MODES, "network": NETWORKS,
                   "relay": RELAYS, "compute": COMPUTE_MODES}
_KEYS: Final = (*_CHOICES, "fps")


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """The conditions of an estimate; the defaults are the rules of a plain estimate.

    ``fps`` (frames per second, > 0) applies to ``workload="stream"`` only: ``None`` means
    images arrive back to back, as fast as the busiest resource allows. ``relay`` applies to
    ``network="shared"`` only. Raises :class:`EnergyError` for an unknown value.
    """

    workload: str = "single"
    power: str = "always-on"
    network: str = "half-duplex"
    fps: float | None = None
    relay: str = "ap"
    compute: str = "uniform"

    def __post_init__(self) -> None:
        """Check every axis against its choices."""
        for axis, choices in _CHOICES.items():
            value = getattr(self, axis)
            if value not in choices:
                close = difflib.get_close_matches(str(value), choices, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise EnergyError(f"scenario {axis}={value!r} is not a choice{hint}; "
                                  f"choices: {', '.join(choices)}")
        if self.fps is not None:
            ok = (isinstance(self.fps, int | float) and not isinstance(self.fps, bool)
                  and math.isfinite(self.fps) and self.fps > 0)
            if not ok:
                raise EnergyError(f"scenario fps must be a frame rate greater than 0, "
                                  f"got {self.fps!r}")
            if self.workload != "stream":
                raise EnergyError(f"scenario fps={self.fps:g} needs workload=stream (a frame "
                                  f"rate means a stream of images), got workload="
                                  f"{self.workload}")
            object.__setattr__(self, "fps", float(self.fps))

    @property
    def is_default(self) -> bool:
        """Whether this is the default scenario (the rules of a plain estimate)."""
        return self == DEFAULT_SCENARIO

    def __str__(self) -> str:
        """The canonical text form, e.g. ``workload=stream,fps=30,power=sleep,network=shared``.

        The three main axes always appear; ``fps``, ``relay`` and ``compute`` only when they
        matter or differ from their default, so equal scenarios have equal texts.
        """
        parts = [f"workload={self.workload}"]
        if self.fps is not None:
            parts.append(f"fps={self.fps:g}")
        parts += [f"power={self.power}", f"network={self.network}"]
        if self.network == "shared":
            parts.append(f"relay={self.relay}")
        if self.compute != "uniform":
            parts.append(f"compute={self.compute}")
        return ",".join(parts)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return dataclasses.asdict(self)


DEFAULT_SCENARIO: Final = Scenario()
"""``workload=single,power=always-on,network=half-duplex``: one image, every device always on,
half-duplex switched links, one ``macs_per_s``."""


def parse_scenario(text: str, where: str = "the scenario") -> Scenario:
    """Read ``key=value`` pairs separated by commas (any order, each key once).

    Keys: ``workload``, ``fps``, ``power``, ``network``, ``relay``, ``compute``; the ones not
    given keep their defaults, so ``""`` is the default scenario. ``where`` names the source
    (an option, an ini key) in the :class:`EnergyError` raised for a bad pair.
    """
    values: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise EnergyError(f"{where}: expected key=value pairs separated by commas, such as "
                              f"'workload=stream,power=sleep,network=shared', got {item!r} "
                              f"in {text!r}")
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise EnergyError(f"{where}: unknown scenario key {key!r}{hint} in {text!r}; "
                              f"keys: {', '.join(_KEYS)}")
        if key in values:
            raise EnergyError(f"{where}: scenario key {key!r} given twice in {text!r}")
        values[key] = value
    fps: float | None = None
    if "fps" in values:
        try:
            fps = float(values.pop("fps"))
        except ValueError:
            raise EnergyError(f"{where}: scenario fps must be a number of frames per second, "
                              f"in {text!r}") from None
    try:
        return Scenario(fps=fps, **values)
    except EnergyError as exc:
        raise EnergyError(f"{where}: {exc} (in {text!r})") from None


def as_scenario(value: Scenario | str | None) -> Scenario:
    """``value`` as a :class:`Scenario`: a scenario as it is, a text parsed, ``None`` the
    default."""
    if value is None:
        return DEFAULT_SCENARIO
    if isinstance(value, Scenario):
        return value
    if isinstance(value, str):
        return parse_scenario(value)
    raise EnergyError(f"scenario must be a Scenario, a text such as 'workload=stream' or None, "
                      f"got {value!r} ({type(value).__name__})")
