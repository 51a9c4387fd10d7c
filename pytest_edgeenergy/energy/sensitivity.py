"""How robust a ranking of strategies is: margin, flip factors and shares of wins.

For one model on one cluster, each strategy's plan is priced under a grid of changed profile
figures (:func:`case_sensitivity`, one strategy at a time, so pytest-xdist workers can each do
their own cases); :func:`rank_robustness` then combines the strategies' figures into a
:class:`Robustness`:

* **margin**: how much more the runner-up spends than the winner, ``runner_up / winner - 1``;
* **flip factors**: for each profile field (``macs_per_s``, ``idle_w``, ...), the factor
  between 1/16 and 16 nearest to 1 that changes the winner when that field alone is
  multiplied by it on every device with that profile (``None``: no factor in the range does).
  Where the energy is affine in the field for a fixed schedule (``active_w``, the energies
  per byte and per message, and ``idle_w`` under ``power=always-on``, for the built-in
  ``board`` and ``ops`` models), each device's energy is a line ``a + b * factor`` and the
  flip point is where two strategies' lines (their maximum, for ``max_device_j``) cross: it is
  computed exactly. Other fields change the schedule: their metric is evaluated at factors
  ``2 ** (k / 4)`` and the flip point interpolated between the two grid factors around it,
  linearly in ``1 / factor`` for rates (a duration is ``work / rate``) and in ``factor``
  otherwise; exact while the critical path does not change between them;
* **shares of wins**: every field's factor drawn log-uniform in [1/2, 2] at once, ``samples``
  times from a seeded generator (the same draws for every strategy), and the share of draws
  each strategy wins.

A factor that would make a profile invalid is not tried: ``active_w`` stays at least
``idle_w`` and ``sleep_w`` at most ``idle_w`` (a single-field search stops at that bound; in a
joint draw the dependent figure is clamped to it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..cluster import Cluster
from ..plan import Plan
from ..profiles import DeviceProfile
from ..robustness import (
    GRID_FACTORS,
    MAX_FACTOR,
    METRICS,
    MIN_FACTOR,
    CaseSensitivity,
    Robustness,
    joint_draws,
    rank_robustness,
)
from .errors import EnergyError
from .estimate import EnergyEstimate, PlanCounts, as_energy_model, price_plan
from .protocol import EnergyModel
from .scenario import Scenario, as_scenario

__all__ = [
    "KIND_PREFIX",
    "case_sensitivity",
    "robustness",
    "scaled_cluster",
    "sensitivity_fields",
]

_AFFINE: Final = ("active_w", "tx_j_per_byte", "rx_j_per_byte", "tx_j_per_message",
                  "rx_j_per_message")
_BASE_FIELDS: Final = ("idle_w", "active_w", "macs_per_s", "mem_bytes_per_s", "net_bytes_per_s",
                       "net_latency_s", "tx_j_per_byte", "rx_j_per_byte")
_BUILT_IN_MODELS: Final = ("board", "ops")
KIND_PREFIX: Final = "macs_per_s_by_kind."


def sensitivity_fields(cluster: Cluster, scenario: Scenario) -> list[str]:
    """The figures varied, as ``profile.field`` keys, in a stable order.

    Every numeric figure that takes part in the estimate under ``scenario`` and is not 0 (a
    zero scales to itself): the eight base figures, the per-message energies when given, the
    power-state figures under ``power=sleep`` and the per-kind rates under
    ``compute=per-kind``.
    """
    keys: list[str] = []
    for profile in dict.fromkeys(cluster.devices):
        names = [*_BASE_FIELDS, "tx_j_per_message", "rx_j_per_message"]
        if scenario.power == "sleep":
            names += ["sleep_w", "wake_s", "wake_j"]
        if scenario.compute == "per-kind":
            names += [KIND_PREFIX + kind for kind, _ in profile.macs_per_s_by_kind]
        for name in names:
            value = _get(profile, name)
            key = f"{profile.name}.{name}"
            if value and key not in keys:
                keys.append(key)
    return keys


def _get(profile: DeviceProfile, name: str) -> float | None:
    if name.startswith(KIND_PREFIX):
        return profile.kind_rates().get(name[len(KIND_PREFIX):])
    value = getattr(profile, name)
    return None if value is None else float(value)


def _scaled(profile: DeviceProfile, factors: Mapping[str, float]) -> DeviceProfile:
    """``profile`` with each of its fields in ``factors`` multiplied, then kept valid."""
    changes: dict[str, Any] = {}
    kinds = profile.kind_rates()
    for key, factor in factors.items():
        name, _, field = key.partition(".")
        if name != profile.name:
            continue
        if field.startswith(KIND_PREFIX):
            kind = field[len(KIND_PREFIX):]
            kinds[kind] = kinds[kind] * factor
            changes["macs_per_s_by_kind"] = tuple(kinds.items())
        else:
            changes[field] = getattr(profile, field) * factor
    if not changes:
        return profile
    idle_w = changes.get("idle_w", profile.idle_w)
    if "active_w" in changes or "idle_w" in changes:
        changes["active_w"] = max(changes.get("active_w", profile.active_w), idle_w)
    if profile.sleep_w is not None:
        changes["sleep_w"] = min(changes.get("sleep_w", profile.sleep_w), idle_w)
    return dataclasses.replace(profile, **changes)


def scaled_cluster(cluster: Cluster, factors: Mapping[str, float]) -> Cluster:
    """``cluster`` with the figures named by ``factors`` (``profile.field`` keys) multiplied."""
    cache: dict[DeviceProfile, DeviceProfile] = {}
    devices = []
    for profile in cluster.devices:
        if profile not in cache:
            cache[profile] = _scaled(profile, factors)
        devices.append(cache[profile])
    return Cluster(tuple(devices))


def _bounds(cluster: Cluster, key: str) -> tuple[float, float]:
    """The factors of ``key`` that keep its profile valid, within 1/16 to 16."""
    name, _, field = key.partition(".")
    profile = next(p for p in cluster.devices if p.name == name)
    low, high = MIN_FACTOR, MAX_FACTOR
    if field == "idle_w":
        high = min(high, profile.active_w / profile.idle_w)
        if profile.sleep_w is not None:
            low = max(low, profile.sleep_w / profile.idle_w)
    elif field == "active_w":
        low = max(low, profile.idle_w / profile.active_w)
    elif field == "sleep_w" and profile.sleep_w:
        high = min(high, profile.idle_w / profile.sleep_w)
    return low, high


def _is_affine(key: str, scenario: Scenario, model: EnergyModel) -> bool:
    """Whether the built-in models' energy is affine in ``key`` for a fixed schedule."""
    if model.name not in _BUILT_IN_MODELS:
        return False
    field = key.partition(".")[2]
    return field in _AFFINE or (field == "idle_w" and scenario.power == "always-on")


def _metric(estimate: EnergyEstimate, metric: str) -> float:
    value: float = getattr(estimate, metric)
    return value


def _device_totals(estimate: EnergyEstimate) -> tuple[float, ...]:
    return tuple(d.total_j for d in estimate.devices)


def case_sensitivity(plan: Plan, cluster: Cluster, model: str | EnergyModel = "board",
                     scenario: Scenario | str | None = None, *, metric: str = "max_device_j",
                     samples: int = 64, seed: int = 0) -> CaseSensitivity:
    """Price ``plan`` on ``cluster`` under changed profile figures (module docstring).

    Raises :class:`EnergyError` for an unknown metric or a negative sample count, and
    whatever :func:`~.estimate.estimate_energy` raises for a bad model, cluster or scenario.
    """
    if metric not in METRICS:
        raise EnergyError(f"unknown ranking metric {metric!r}; choices: {', '.join(METRICS)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise EnergyError(f"the sample count must be a whole number, 0 or more, got {samples!r}")
    energy_model = as_energy_model(model)
    conditions = as_scenario(scenario)
    counts = PlanCounts.of(plan)

    def price(factors: Mapping[str, float]) -> EnergyEstimate:
        return price_plan(plan, counts, scaled_cluster(cluster, factors), energy_model,
                          conditions)

    base = price({})
    lines: dict[str, tuple[tuple[float, float], ...]] = {}
    grid: dict[str, tuple[float, ...]] = {}
    bounds: dict[str, tuple[float, float]] = {}
    keys = sensitivity_fields(cluster, conditions)
    for key in keys:
        low, high = bounds[key] = _bounds(cluster, key)
        if _is_affine(key, conditions, energy_model):
            at_one, at_two = _device_totals(base), _device_totals(price({key: 2.0}))
            lines[key] = tuple((2 * e1 - e2, e2 - e1)
                               for e1, e2 in zip(at_one, at_two, strict=True))
        else:
            grid[key] = tuple(
                _metric(price({key: f}), metric) if low <= f <= high else math.nan
                for f in GRID_FACTORS)
    draws = joint_draws(keys, samples, seed)
    return CaseSensitivity(
        strategy=plan.strategy, metric=metric, scenario=str(conditions),
        base=_metric(base, metric), lines=lines, grid=grid, bounds=bounds,
        samples=tuple(_metric(price(d), metric) for d in draws), seed=seed)


def robustness(plans: Mapping[str, Plan] | Sequence[Plan], cluster: Cluster,
               model: str | EnergyModel = "board", scenario: Scenario | str | None = None, *,
               metric: str = "max_device_j", samples: int = 64, seed: int = 0) -> Robustness:
    """The robustness of the ranking of ``plans`` (one per strategy) on ``cluster``."""
    items = list(plans.values()) if isinstance(plans, Mapping) else list(plans)
    cases = [case_sensitivity(p, cluster, model, scenario, metric=metric, samples=samples,
                              seed=seed) for p in items]
    return rank_robustness(cases, homogeneous=cluster.is_homogeneous)
