"""Energy estimation: simulate a plan's schedule on a cluster, then price each device's work.

``estimate_energy(partitioned_model)`` (or ``estimate_energy(plan, cluster)``) returns an
:class:`EnergyEstimate` with one :class:`DeviceEnergy` per device. The energy model is
pluggable by name: ``board`` (the default, board-level power figures from the device
profiles) and ``ops`` (bottom-up per-operation energies); see ``docs/energy-model.md``.
"""

from .board import BoardModel
from .errors import EnergyError
from .estimate import DeviceEnergy, EnergyEstimate, estimate_energy
from .ops import OpsModel
from .protocol import DeviceUsage, EnergyModel, EnergyTerms
from .registry import (
    DEFAULT_ENERGY_MODEL,
    get_energy_model,
    list_energy_models,
    register_energy_model,
    unregister_energy_model,
)
from .schedule import Schedule, simulate, task_duration_s, transfer_duration_s

__all__ = [
    "DEFAULT_ENERGY_MODEL",
    "BoardModel",
    "DeviceEnergy",
    "DeviceUsage",
    "EnergyError",
    "EnergyEstimate",
    "EnergyModel",
    "EnergyTerms",
    "OpsModel",
    "Schedule",
    "estimate_energy",
    "get_energy_model",
    "list_energy_models",
    "register_energy_model",
    "simulate",
    "task_duration_s",
    "transfer_duration_s",
    "unregister_energy_model",
]
