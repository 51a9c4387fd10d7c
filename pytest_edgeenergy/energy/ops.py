"""A bottom-up energy model from per-operation energies (Horowitz, ISSCC 2014).

M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, gives
energies per operation in a 45 nm process at 0.9 V: a 32-bit floating-point multiply costs
3.7 pJ and an add 0.9 pJ, so one fp32 multiply-accumulate costs 4.6 pJ; reading 64 bits from
DRAM costs 1.3 to 2.6 nJ, of which this model takes the midpoint, 1.95 nJ per 8 bytes.

Compute energy is the device's MACs times the MAC energy plus its memory traffic
(``bytes_touched``: activations read and written, weights read) times the DRAM energy per
byte: every byte a task touches is assumed to come from and go to DRAM once (no cache reuse,
no re-reads). Communication and static energy are the board model's: per-byte energies from
the profile, and ``idle_w`` for the whole makespan. The model ignores everything a real
processor spends around the arithmetic (instruction fetch, register files, caches, control),
which is most of it, so its compute energy is a lower bound, far below the board model's.
"""

from __future__ import annotations

from typing import Final

from ..profiles import DeviceProfile
from .board import comm_energy_j
from .protocol import DeviceUsage, EnergyTerms

__all__ = ["DRAM_J_PER_BYTE", "FP32_ADD_J", "FP32_MAC_J", "FP32_MUL_J", "OpsModel"]

FP32_MUL_J: Final = 3.7e-12
"""A 32-bit float multiply, 45 nm (Horowitz, ISSCC 2014)."""

FP32_ADD_J: Final = 0.9e-12
"""A 32-bit float add, 45 nm (Horowitz, ISSCC 2014)."""

FP32_MAC_J: Final = FP32_MUL_J + FP32_ADD_J
"""A multiply-accumulate: one multiply and one add, 4.6 pJ."""

DRAM_J_PER_BYTE: Final = (1.3e-9 + 2.6e-9) / 2 / 8
"""DRAM access: 1.3-2.6 nJ per 64 bits (Horowitz, ISSCC 2014); the midpoint 1.95 nJ per 8
bytes, 0.244 nJ per byte."""


class OpsModel:
    """``compute_j = macs * 4.6 pJ + bytes_touched * 1.95 nJ / 8``; board comm and static."""

    name = "ops"
    version = "1"

    def device_energy(self, profile: DeviceProfile, usage: DeviceUsage) -> EnergyTerms:
        """The bottom-up energy of one device."""
        return EnergyTerms(
            compute_j=FP32_MAC_J * usage.macs + DRAM_J_PER_BYTE * usage.bytes_touched,
            comm_j=comm_energy_j(profile, usage),
            static_j=profile.idle_w * usage.powered_s,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"
