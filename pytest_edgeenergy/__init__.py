"""pytest-edgeenergy: partition CNNs across edge devices, prove the partitioned inference equal
to the model, estimate each device's energy, and track it in CI.

The public API::

    from pytest_edgeenergy import build_model, model_input_shape, partition

    model = build_model("resnet18")
    pm = partition(model, "spatial", 4, model_input_shape("resnet18"))
    y = pm(x)                       # runs the partitioned inference (local backend)
    pm.plan.device_stats()          # planned per-device counts
    pm.trace.device_stats()         # measured by the last run
    estimate_energy(pm).devices     # per-device energy (J) on the cluster's profiles

Each name is imported on first use (PEP 562), so importing the package costs nothing:
``python -m pytest_edgeenergy compare`` and ``history`` run without torch and pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public API by defining module, imported when first used (mirrored for type checkers
# below; tests/unit/test_records_imports.py checks that the two agree).
_API: dict[str, tuple[str, ...]] = {
    "cluster": ("Cluster", "as_cluster"),
    "energy": ("DeviceEnergy", "EnergyError", "EnergyEstimate", "Scenario", "estimate_energy",
               "list_energy_models", "register_energy_model"),
    "errors": ("EdgeEnergyError", "PartitionError", "ProfileError"),
    "graph": ("LayerGraph", "build_graph"),
    "partitioned": ("PartitionedModel", "partition"),
    "plan": ("DeviceStats", "Plan"),
    "profiles": ("DeviceProfile", "list_devices", "load_device"),
    "strategies": ("BuilderStrategy", "Strategy", "get_strategy", "list_strategies",
                   "register_strategy"),
    "trace": ("Trace",),
    "zoo": ("build_model", "list_models", "model_input_shape", "register_model"),
}
_HOME = {name: module for module, names in _API.items() for name in names}

if TYPE_CHECKING:
    from .cluster import Cluster, as_cluster
    from .energy import (
        DeviceEnergy,
        EnergyError,
        EnergyEstimate,
        Scenario,
        estimate_energy,
        list_energy_models,
        register_energy_model,
    )
    from .errors import EdgeEnergyError, PartitionError, ProfileError
    from .graph import LayerGraph, build_graph
    from .partitioned import PartitionedModel, partition
    from .plan import DeviceStats, Plan
    from .profiles import DeviceProfile, list_devices, load_device
    from .strategies import (
        BuilderStrategy,
        Strategy,
        get_strategy,
        list_strategies,
        register_strategy,
    )
    from .trace import Trace
    from .zoo import build_model, list_models, model_input_shape, register_model


def __getattr__(name: str) -> object:
    """Import a public name (or a subpackage such as ``zoo``) when it is first used."""
    module = _HOME.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})

__all__ = [
    "BuilderStrategy",
    "Cluster",
    "DeviceEnergy",
    "DeviceProfile",
    "DeviceStats",
    "EdgeEnergyError",
    "EnergyError",
    "EnergyEstimate",
    "LayerGraph",
    "PartitionError",
    "PartitionedModel",
    "Plan",
    "ProfileError",
    "Scenario",
    "Strategy",
    "Trace",
    "__version__",
    "as_cluster",
    "build_graph",
    "build_model",
    "estimate_energy",
    "get_strategy",
    "list_devices",
    "list_energy_models",
    "list_models",
    "list_strategies",
    "load_device",
    "model_input_shape",
    "partition",
    "register_energy_model",
    "register_model",
    "register_strategy",
]
