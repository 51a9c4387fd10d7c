"""``estimate_energy()``: a plan and a cluster in, each device's energy out.

The estimate is a pure function of the plan's counts and the device profiles: the plan's
schedule is simulated (:mod:`.schedule`), each device's usage is handed to an energy model
(:mod:`.board` by default), and the per-device terms are collected with the model's name and
version. Nothing is run or timed, so the same plan and profiles always give the same joules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ..cluster import Cluster, as_cluster
from ..figures import DeviceFigures
from ..plan import DeviceStats, Plan, Task
from .errors import EnergyError
from .power import active_intervals, check_sleep_fields, sleep_energy
from .protocol import DeviceUsage, EnergyModel
from .registry import DEFAULT_ENERGY_MODEL, get_energy_model
from .scenario import DEFAULT_SCENARIO, Scenario, as_scenario
from .schedule import check_cluster, simulate

if TYPE_CHECKING:
    from ..partitioned import PartitionedModel

__all__ = ["DeviceEnergy", "EnergyEstimate", "PlanCounts", "as_energy_model", "estimate_energy",
           "price_plan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEnergy(DeviceFigures):
    """One device's share of an inference: its times, counts and joules (the fields of
    :class:`~pytest_edgeenergy.figures.DeviceFigures`), the profile's name and the bytes its
    compute touched."""

    device: str  # the profile's name
    bytes_touched: int
    # Under power=sleep: seconds awake per image and wake-ups per image (None: always on).
    awake_s: float | None = None
    wakes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the power-state figures only under ``power=sleep``)."""
        data = asdict(self)
        if self.awake_s is None:
            del data["awake_s"], data["wakes"]
        return data


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """The energy of one partitioned inference, per device, from one energy model.

    ``devices[d]`` is device ``d``'s record (a tuple, indexed by device); ``model`` and
    ``model_version`` name the energy model that produced it; ``strategy`` and ``cluster``
    (the cluster's signature) say what was estimated. ``scenario`` is the scenario's text;
    ``period_s`` the time between images of a stream (the makespan for one image, whose
    latency ``makespan_s`` always is), and ``bottleneck`` what sets it. Per-device joules are
    per image.
    """

    model: str
    model_version: str
    strategy: str
    cluster: str
    makespan_s: float
    devices: tuple[DeviceEnergy, ...]
    scenario: str = str(DEFAULT_SCENARIO)
    period_s: float = -1.0
    bottleneck: str = "the schedule"

    def __post_init__(self) -> None:
        """An estimate made without a period has the makespan as its period."""
        if self.period_s < 0:
            object.__setattr__(self, "period_s", self.makespan_s)

    @property
    def total_j(self) -> float:
        """Joules over all devices."""
        return sum(d.total_j for d in self.devices)

    @property
    def max_device_j(self) -> float:
        """Joules of the device that spends the most."""
        return max(d.total_j for d in self.devices)

    @property
    def mean_device_j(self) -> float:
        """Joules per device, idle devices included (they are powered too)."""
        return self.total_j / len(self.devices)

    @property
    def comm_bytes(self) -> int:
        """Bytes that crossed between devices (each counted once, at its sender)."""
        return sum(d.bytes_sent for d in self.devices)

    @property
    def fits(self) -> bool:
        """Whether every device's peak memory is within its profile's memory."""
        return all(d.fits for d in self.devices)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, the per-device records and the totals included."""
        return {
            "model": self.model, "model_version": self.model_version,
            "strategy": self.strategy, "cluster": self.cluster,
            "scenario": self.scenario, "makespan_s": self.makespan_s,
            "period_s": self.period_s, "bottleneck": self.bottleneck, "total_j": self.total_j,
            "max_device_j": self.max_device_j, "mean_device_j": self.mean_device_j,
            "comm_bytes": self.comm_bytes, "fits": self.fits,
            "devices": [d.to_dict() for d in self.devices],
        }


def _resolve(target: Plan | PartitionedModel,
             cluster: Cluster | int | str | None) -> tuple[Plan, Cluster]:
    if isinstance(target, Plan):
        if cluster is None:
            raise EnergyError(
                f"estimating a bare plan ({target.strategy}, {target.n_devices} device(s)) "
                f"needs the cluster it runs on: pass cluster=, or pass the PartitionedModel")
        return target, as_cluster(cluster)
    plan = getattr(target, "plan", None)
    own = getattr(target, "cluster", None)
    if not isinstance(plan, Plan) or not isinstance(own, Cluster):
        raise EnergyError(f"cannot estimate the energy of {type(target).__name__}: expected a "
                          f"Plan or a PartitionedModel (with .plan and .cluster)")
    return plan, own if cluster is None else as_cluster(cluster)


def estimate_energy(target: Plan | PartitionedModel, cluster: Cluster | int | str | None = None,
                    model: str | EnergyModel = DEFAULT_ENERGY_MODEL, *,
                    scenario: Scenario | str | None = None) -> EnergyEstimate:
    """Estimate each device's energy for one inference of ``target`` under ``scenario``.

    ``target`` is a :class:`~pytest_edgeenergy.partitioned.PartitionedModel`, which brings its
    plan and cluster (a ``cluster`` given here replaces its own: "what if the devices were
    these?"), or a :class:`~pytest_edgeenergy.plan.Plan`, which needs ``cluster`` (a
    :class:`~pytest_edgeenergy.cluster.Cluster`, a device count or a cluster spec). ``model``
    is a registered energy model's name or a model object. ``scenario`` (a
    :class:`~.scenario.Scenario`, its text such as ``"workload=stream,power=sleep"``, or
    ``None`` for the default) sets the conditions; the default reproduces the rules of
    ``docs/energy-model.md`` for one image.

    Raises :class:`~pytest_edgeenergy.energy.errors.EnergyError` for a missing cluster, a
    cluster whose device count differs from the plan's, an unknown model name or object, a
    bad scenario, or ``power=sleep`` on a profile without the power-state figures.
    """
    energy_model = as_energy_model(model)
    plan, devices = _resolve(target, cluster)
    return price_plan(plan, PlanCounts.of(plan), devices, energy_model, as_scenario(scenario))


def as_energy_model(model: str | EnergyModel) -> EnergyModel:
    """``model`` as an energy model object: a registered name looked up, an object checked."""
    if isinstance(model, str):
        return get_energy_model(model)
    if isinstance(model, EnergyModel):
        return model
    raise EnergyError(f"model must be an energy model's name or an object with 'name', "
                      f"'version' and 'device_energy', got {model!r}")


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """What a plan's estimate needs that no profile changes: computed once, priced often."""

    stats: tuple[DeviceStats, ...]
    touched: tuple[int, ...]  # bytes touched by each device's tasks
    received: tuple[int, ...]  # messages each device receives

    @classmethod
    def of(cls, plan: Plan) -> PlanCounts:
        """The counts of ``plan``."""
        touched = [0] * plan.n_devices
        received = [0] * plan.n_devices
        for step in plan.steps:
            if isinstance(step, Task):
                touched[step.device] += step.bytes_touched
            else:
                received[step.dst] += 1
        return cls(tuple(plan.device_stats()), tuple(touched), tuple(received))


def price_plan(plan: Plan, counts: PlanCounts, devices: Cluster, energy_model: EnergyModel,
               conditions: Scenario) -> EnergyEstimate:
    """The estimate of ``plan`` (whose counts are ``counts``) on ``devices`` under
    ``conditions``: the schedule simulated, each device priced by ``energy_model``.

    This is :func:`estimate_energy` without the argument handling, for callers that price one
    plan many times (the sensitivity analysis, a search over plans).
    """
    check_cluster(plan, devices)
    sleep = conditions.power == "sleep"
    if sleep:
        for d, profile in enumerate(devices.devices):
            check_sleep_fields(profile, d)
    schedule = simulate(plan, devices, conditions)
    touched, received = counts.touched, counts.received
    records = []
    for d, (profile, st) in enumerate(zip(devices.devices, counts.stats, strict=True)):
        usage = DeviceUsage(
            macs=st.macs, bytes_touched=touched[d], bytes_sent=st.bytes_sent,
            bytes_received=st.bytes_received, busy_s=schedule.busy_s[d],
            comm_s=schedule.comm_s[d], makespan_s=schedule.makespan_s,
            window_s=schedule.period_s, messages_sent=st.messages,
            messages_received=received[d])
        terms = energy_model.device_energy(profile, usage)
        awake_s: float | None = None
        wakes: int | None = None
        if sleep:
            states = sleep_energy(profile, active_intervals(plan, schedule, d), schedule.period_s)
            terms = replace(terms, static_j=states.static_j)
            awake_s, wakes = schedule.period_s - states.asleep_s, states.wakes
        records.append(DeviceEnergy(
            device=profile.name, busy_s=usage.busy_s, comm_s=usage.comm_s,
            compute_j=terms.compute_j, comm_j=terms.comm_j, static_j=terms.static_j,
            total_j=terms.total_j, peak_bytes=st.peak_bytes,
            fits=st.peak_bytes <= profile.memory_bytes, macs=st.macs,
            bytes_touched=touched[d], bytes_sent=st.bytes_sent,
            bytes_received=st.bytes_received, awake_s=awake_s, wakes=wakes))
    return EnergyEstimate(
        model=energy_model.name, model_version=energy_model.version, strategy=plan.strategy,
        cluster=devices.signature, makespan_s=schedule.makespan_s, devices=tuple(records),
        scenario=str(conditions), period_s=schedule.period_s, bottleneck=schedule.bottleneck)
