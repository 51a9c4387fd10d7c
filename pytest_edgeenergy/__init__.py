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
"""

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

__version__ = "0.1.0"

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
