"""The default, board-level energy model: the device's measured power, minus nothing.

A device draws ``idle_w`` for the whole inference (it is powered whether it works or not),
``active_w - idle_w`` more while it computes, and a fixed energy per byte it sends or
receives. All three figures are whole-board measurements at the power input, so they include
memory, regulators and the network controller. See ``docs/energy-model.md``.
"""

from __future__ import annotations

from ..profiles import DeviceProfile
from .protocol import DeviceUsage, EnergyTerms

__all__ = ["BoardModel", "comm_energy_j"]


def comm_energy_j(profile: DeviceProfile, usage: DeviceUsage) -> float:
    """``tx_j_per_byte * bytes_sent + rx_j_per_byte * bytes_received``, plus, when the profile
    gives them, ``tx_j_per_message * messages_sent + rx_j_per_message * messages_received``,
    in joules."""
    energy_j = (profile.tx_j_per_byte * usage.bytes_sent
                + profile.rx_j_per_byte * usage.bytes_received)
    if profile.tx_j_per_message is not None:
        energy_j += profile.tx_j_per_message * usage.messages_sent
    if profile.rx_j_per_message is not None:
        energy_j += profile.rx_j_per_message * usage.messages_received
    return energy_j


class BoardModel:
    """``compute_j = (active_w - idle_w) * busy_s``, per-byte (and per-message) comm,
    ``static_j = idle_w * powered_s`` (the makespan, or a stream's period)."""

    name = "board"
    version = "1"

    def device_energy(self, profile: DeviceProfile, usage: DeviceUsage) -> EnergyTerms:
        """The board-level energy of one device (docs/energy-model.md, "The `board` model")."""
        return EnergyTerms(
            compute_j=(profile.active_w - profile.idle_w) * usage.busy_s,
            comm_j=comm_energy_j(profile, usage),
            static_j=profile.idle_w * usage.powered_s,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"
