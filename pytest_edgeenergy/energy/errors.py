"""The one error the energy package raises on bad input."""

from __future__ import annotations

from ..errors import EdgeEnergyError

__all__ = ["EnergyError"]


class EnergyError(EdgeEnergyError):
    """An unknown energy model, a cluster that does not match the plan, or a malformed plan.

    The message names the model, the device counts or the step at fault.
    """
