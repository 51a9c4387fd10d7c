"""What an energy model is: per-device joules from what a device did during one inference.

The schedule (:mod:`.schedule`) and the plan's counts give, for every device, a
:class:`DeviceUsage`; an energy model turns a usage and the device's profile into
:class:`EnergyTerms`. Models are registered by name (:mod:`.registry`) and carry a
``version`` that baselines record, so a changed model never passes for a changed plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..figures import EnergyTerms
from ..profiles import DeviceProfile

__all__ = ["DeviceUsage", "EnergyModel", "EnergyTerms"]


@dataclass(frozen=True, slots=True)
class DeviceUsage:
    """What one device did in one inference: the plan's counts and the simulated times.

    ``bytes_touched`` is the memory traffic of its tasks (activations read and written plus
    weights read, summed over tasks); ``busy_s`` the sum of its task durations; ``comm_s`` the
    time its network interface was busy; ``makespan_s`` the inference's, the same for every
    device. ``window_s`` is how long the device is powered per image under the scenario (the
    makespan for one image, the period for a stream; ``None``: the makespan), and
    ``messages_sent`` / ``messages_received`` count its transfers.
    """

    macs: int
    bytes_touched: int
    bytes_sent: int
    bytes_received: int
    busy_s: float
    comm_s: float
    makespan_s: float
    window_s: float | None = None
    messages_sent: int = 0
    messages_received: int = 0

    @property
    def powered_s(self) -> float:
        """Seconds the device is powered per image: ``window_s``, or the makespan."""
        return self.makespan_s if self.window_s is None else self.window_s


@runtime_checkable
class EnergyModel(Protocol):
    """The protocol every energy model implements."""

    @property
    def name(self) -> str:
        """The name the model is registered and reported under."""
        ...

    @property
    def version(self) -> str:
        """Changes whenever the model's formulas or constants change; baselines record it."""
        ...

    def device_energy(self, profile: DeviceProfile, usage: DeviceUsage) -> EnergyTerms:
        """The energy of one device with ``profile`` that did ``usage``."""
        ...
