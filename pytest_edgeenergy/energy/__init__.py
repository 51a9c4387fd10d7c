"""Energy estimation: simulate a plan's schedule on a cluster, then price each device's work.

``estimate_energy(partitioned_model)`` (or ``estimate_energy(plan, cluster)``) returns an
:class:`EnergyEstimate` with one :class:`DeviceEnergy` per device. The energy model is
pluggable by name: ``board`` (the default, board-level power figures from the device
profiles) and ``ops`` (bottom-up per-operation energies); the conditions are a
:class:`Scenario` (one image or a stream, always-on or sleeping devices, the link model);
see ``docs/energy-model.md``.
"""

from .board import BoardModel
from .errors import EnergyError
from .estimate import DeviceEnergy, EnergyEstimate, estimate_energy
from .ops import OpsModel
from .power import SleepEnergy, sleep_energy
from .protocol import DeviceUsage, EnergyModel, EnergyTerms
from .registry import (
    DEFAULT_ENERGY_MODEL,
    get_energy_model,
    list_energy_models,
    register_energy_model,
    unregister_energy_model,
)
from .scenario import DEFAULT_SCENARIO, Scenario, as_scenario, parse_scenario
from .schedule import Schedule, simulate, task_duration_s, transfer_duration_s

__all__ = [
    "DEFAULT_ENERGY_MODEL",
    "DEFAULT_SCENARIO",
    "BoardModel",
    "DeviceEnergy",
    "DeviceUsage",
    "EnergyError",
    "EnergyEstimate",
    "EnergyModel",
    "EnergyTerms",
    "OpsModel",
    "Scenario",
    "Schedule",
    "SleepEnergy",
    "as_scenario",
    "estimate_energy",
    "get_energy_model",
    "list_energy_models",
    "parse_scenario",
    "register_energy_model",
    "simulate",
    "sleep_energy",
    "task_duration_s",
    "transfer_duration_s",
    "unregister_energy_model",
]
