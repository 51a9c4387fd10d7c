"""What the search minimises, and the one place it asks the energy model anything.

Every joule and second the search uses comes from :func:`estimate` (a whole plan or a plan
fragment, through :func:`pytest_edgeenergy.energy.estimate_energy` and the schedule simulation)
or :func:`unit_costs` (the energy model's compute energy per MAC and static power per device).
Both take the run's energy model, and the first the run's scenario (handed on to the estimate
and the schedule), so the objective is always the run's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...cluster import Cluster
from ...energy import EnergyEstimate, estimate_energy, get_energy_model, simulate
from ...energy.protocol import DeviceUsage, EnergyModel
from ...energy.scenario import Scenario, as_scenario
from ...errors import PartitionError
from ...plan import Plan

__all__ = ["OBJECTIVES", "Goal", "Measured", "estimate", "measure", "unit_costs"]

OBJECTIVES = ("max_device_j", "total_j", "makespan_s")
"""What the search can minimise; a deadline (``deadline_s``) constrains any of them."""


def estimate(plan: Plan, cluster: Cluster, energy_model: str | EnergyModel,
             scenario: Scenario | str | None = None) -> EnergyEstimate:
    """The run's energy estimate of ``plan`` (its scenario passed on when there is one)."""
    return estimate_energy(plan, cluster, energy_model, scenario=scenario)


@dataclass(frozen=True, slots=True)
class Measured:
    """Per-device joules and seconds of a plan or of a fragment of one."""

    device_j: tuple[float, ...]  # compute + comm, plus static for whole plans
    time_s: float
    fits: bool = True
    weight_bytes: tuple[int, ...] = ()  # weights each device holds
    activation_bytes: tuple[int, ...] = ()  # the most activation bytes it holds at once


def measure(plan: Plan, cluster: Cluster, energy_model: str | EnergyModel,
            scenario: Scenario | str | None = None, *, fragment: bool = False) -> Measured:
    """Price ``plan``. A ``fragment`` (no output on device 0) gets its compute and comm joules
    and the time its last step ends; a whole plan its total joules and makespan."""
    est = estimate(plan, cluster, energy_model, scenario)
    stats = plan.device_stats()
    weights = tuple(s.weight_bytes for s in stats)
    activations = tuple(s.peak_bytes - s.weight_bytes for s in stats)
    if not fragment:
        return Measured(tuple(d.total_j for d in est.devices), est.makespan_s, est.fits,
                        weights, activations)
    schedule = simulate(plan, cluster, as_scenario(scenario))
    return Measured(tuple(d.compute_j + d.comm_j for d in est.devices), schedule.finish_s,
                    True, weights, activations)


def unit_costs(cluster: Cluster, energy_model: str | EnergyModel
               ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per device: MACs per second, compute joules per MAC and static watts, as the run's
    energy model prices one second of pure arithmetic and one idle second."""
    model = get_energy_model(energy_model) if isinstance(energy_model, str) else energy_model
    speeds, per_mac, static = [], [], []
    for p in cluster.devices:
        macs = p.macs_per_s
        busy = model.device_energy(p, DeviceUsage(int(macs), 0, 0, 0, 1.0, 0.0, 0.0))
        idle = model.device_energy(p, DeviceUsage(0, 0, 0, 0, 0.0, 0.0, 1.0))
        speeds.append(macs)
        per_mac.append(busy.compute_j / macs)
        static.append(idle.static_j)
    return tuple(speeds), tuple(per_mac), tuple(static)


@dataclass(frozen=True, slots=True)
class Goal:
    """An objective, and an optional deadline on the makespan."""

    objective: str = "max_device_j"
    deadline_s: float | None = None

    def value(self, device_j: tuple[float, ...], time_s: float) -> float:
        """The objective of per-device joules ``device_j`` and makespan ``time_s``."""
        if self.objective == "total_j":
            return sum(device_j)
        if self.objective == "makespan_s":
            return time_s
        return max(device_j)

    def key(self, device_j: tuple[float, ...], time_s: float,
            fits: bool = True) -> tuple[float, float, float]:
        """Sort key, smaller is better: memory fit first (a hard constraint), then the
        deadline (when none can meet it, the fastest), then the objective."""
        late = 0.0
        if self.deadline_s is not None and time_s > self.deadline_s * (1 + 1e-12):
            late = time_s
        return (0.0 if fits else 1.0, late, self.value(device_j, time_s))

    def feasible(self, m: Measured) -> bool:
        """Whether ``m`` fits in memory and meets the deadline."""
        return m.fits and (self.deadline_s is None or m.time_s <= self.deadline_s * (1 + 1e-12))


def check_goal(objective: object, deadline_s: object) -> Goal:
    """A :class:`Goal` from the strategy's parameters, or a PartitionError naming the bad one."""
    if objective not in OBJECTIVES:
        raise PartitionError(f"strategy 'search' parameter objective must be one of "
                             f"{', '.join(OBJECTIVES)}, got {objective!r}")
    if deadline_s is not None and (isinstance(deadline_s, bool)
                                   or not isinstance(deadline_s, int | float)
                                   or not math.isfinite(deadline_s) or deadline_s <= 0):
        raise PartitionError(f"strategy 'search' parameter deadline_s must be a positive "
                             f"number of seconds, got {deadline_s!r}")
    return Goal(str(objective), None if deadline_s is None else float(deadline_s))
