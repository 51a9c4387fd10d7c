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
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ..cluster import Cluster
from ..plan import Plan
from ..profiles import DeviceProfile
from .errors import EnergyError
from .estimate import EnergyEstimate, PlanCounts, as_energy_model, price_plan
from .protocol import EnergyModel
from .scenario import Scenario, as_scenario

__all__ = [
    "GRID_FACTORS",
    "METRICS",
    "CaseSensitivity",
    "FieldFlip",
    "Robustness",
    "case_sensitivity",
    "rank_robustness",
    "robustness",
    "sensitivity_fields",
]

MIN_FACTOR: Final = 1 / 16
MAX_FACTOR: Final = 16.0
GRID_FACTORS: Final = tuple(2 ** (k / 4) for k in range(-16, 17))
"""The factors at which a field that changes the schedule is evaluated (1/16 to 16)."""

JOINT_LOW: Final = 0.5
JOINT_HIGH: Final = 2.0

METRICS: Final = ("max_device_j", "total_j", "mean_device_j")
"""What a ranking compares: the worst device's, all devices', or the mean device's joules."""

_AFFINE: Final = ("active_w", "tx_j_per_byte", "rx_j_per_byte", "tx_j_per_message",
                  "rx_j_per_message")
_RATE_PREFIX: Final = ("macs_per_s", "mem_bytes_per_s", "net_bytes_per_s")
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


def _combine(metric: str, values: Sequence[float]) -> float:
    if metric == "max_device_j":
        return max(values)
    if metric == "total_j":
        return sum(values)
    return sum(values) / len(values)


@dataclasses.dataclass(frozen=True)
class CaseSensitivity:
    """One strategy's figures under changed profiles, for :func:`rank_robustness`.

    ``base`` is the metric with the profiles as they are; ``lines[key]`` each device's energy
    as ``(a, b)``, ``a + b * factor``, for a field in which it is affine; ``grid[key]`` the
    metric at each of :data:`GRID_FACTORS` within the field's valid bounds (``nan`` outside
    them) for the other fields; ``samples`` the metric under each joint draw.
    """

    strategy: str
    metric: str
    scenario: str
    base: float
    lines: dict[str, tuple[tuple[float, float], ...]]
    grid: dict[str, tuple[float, ...]]
    bounds: dict[str, tuple[float, float]]
    samples: tuple[float, ...]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``nan`` written as ``None``)."""
        return {
            "strategy": self.strategy, "metric": self.metric, "scenario": self.scenario,
            "base": self.base, "seed": self.seed,
            "lines": {k: [list(ab) for ab in v] for k, v in self.lines.items()},
            "grid": {k: [None if math.isnan(x) else x for x in v] for k, v in self.grid.items()},
            "bounds": {k: list(v) for k, v in self.bounds.items()},
            "samples": list(self.samples),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseSensitivity:
        """Restore :meth:`to_dict` output."""
        return cls(
            strategy=data["strategy"], metric=data["metric"], scenario=data["scenario"],
            base=float(data["base"]), seed=int(data["seed"]),
            lines={k: tuple((float(a), float(b)) for a, b in v)
                   for k, v in data["lines"].items()},
            grid={k: tuple(math.nan if x is None else float(x) for x in v)
                  for k, v in data["grid"].items()},
            bounds={k: (float(v[0]), float(v[1])) for k, v in data["bounds"].items()},
            samples=tuple(float(x) for x in data["samples"]))


def joint_draws(keys: Sequence[str], samples: int, seed: int) -> list[dict[str, float]]:
    """``samples`` joint draws: each key's factor log-uniform in [1/2, 2], from ``seed``."""
    rng = random.Random(seed)
    low, high = math.log(JOINT_LOW), math.log(JOINT_HIGH)
    return [{k: math.exp(rng.uniform(low, high)) for k in keys} for _ in range(samples)]


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


@dataclasses.dataclass(frozen=True)
class FieldFlip:
    """The factor of one field, nearest to 1 within its bounds, that changes the winner.

    ``factor`` is ``None`` when no factor in range changes it; ``new_winner`` is the strategy
    that wins just past the flip; ``exact`` says whether the flip was computed in closed form.
    """

    field: str
    factor: float | None
    new_winner: str | None
    exact: bool

    def describe(self, homogeneous: bool = True) -> str:
        """E.g. ``"macs_per_s x13 -> layer"`` or ``"idle_w: never"``."""
        name = self.field.partition(".")[2] if homogeneous else self.field
        if self.factor is None:
            return f"{name}: no flip in x1/16..x16"
        return f"{name} x{_factor_text(self.factor)} -> {self.new_winner}"


def _factor_text(factor: float) -> str:
    if factor >= 1:
        return f"{factor:.3g}"
    return f"1/{1 / factor:.3g}"


@dataclasses.dataclass(frozen=True)
class Robustness:
    """How sure a ranking is: see the module docstring."""

    metric: str
    scenario: str
    ranking: tuple[tuple[str, float], ...]  # (strategy, metric), best first
    flips: tuple[FieldFlip, ...]  # nearest flips first; no-flip fields last
    shares: dict[str, float]  # strategy -> share of joint draws won
    samples: int
    seed: int
    homogeneous: bool = True

    @property
    def winner(self) -> str:
        """The strategy with the smallest metric."""
        return self.ranking[0][0]

    @property
    def runner_up(self) -> str | None:
        """The second-best strategy (None with a single strategy)."""
        return self.ranking[1][0] if len(self.ranking) > 1 else None

    @property
    def margin(self) -> float | None:
        """``runner_up / winner - 1`` (None with a single strategy; inf if the winner is 0)."""
        if len(self.ranking) < 2:
            return None
        best, second = self.ranking[0][1], self.ranking[1][1]
        return math.inf if best == 0 else second / best - 1

    @property
    def nearest_flip(self) -> FieldFlip | None:
        """The single-field change nearest to 1 (in log scale) that changes the winner."""
        flips = [f for f in self.flips if f.factor is not None]
        return flips[0] if flips else None

    def headline(self) -> str:
        """One line: ``"spatial wins by 12%; stays the winner unless macs_per_s x13 (-> layer);
        wins 87% of joint draws"``."""
        margin = self.margin
        text = f"{self.winner} wins"
        if margin is not None:
            text += f" by {100 * margin:.1f}%" if math.isfinite(margin) else " (others > 0 J)"
        flip = self.nearest_flip
        if len(self.ranking) > 1:
            if flip is None:
                text += "; no single field flips it within x1/16..x16"
            else:
                name = flip.field.partition(".")[2] if self.homogeneous else flip.field
                text += (f"; stays the winner unless {name} x{_factor_text(flip.factor or 1)} "
                         f"(-> {flip.new_winner})")
        if self.samples:
            text += f"; wins {100 * self.shares.get(self.winner, 0.0):.0f}% of joint draws"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "metric": self.metric, "scenario": self.scenario, "winner": self.winner,
            "runner_up": self.runner_up, "margin": self.margin,
            "ranking": [list(r) for r in self.ranking],
            "flips": [dataclasses.asdict(f) for f in self.flips],
            "shares": self.shares, "samples": self.samples, "seed": self.seed,
            "headline": self.headline(),
        }


def _winner_at(values: Mapping[str, float]) -> str:
    return min(values, key=lambda s: (values[s], s))


def _affine_flip(key: str, cases: Mapping[str, CaseSensitivity], winner: str,
                 metric: str) -> tuple[float, str] | None:
    """The exact flip of an affine field: the crossing of piecewise-linear metrics."""
    low, high = cases[winner].bounds[key]
    lines = {s: c.lines[key] for s, c in cases.items()}

    def value(s: str, x: float) -> float:
        return _combine(metric, [a + b * x for a, b in lines[s]])

    # Breakpoints: where any two device lines (of any strategies) cross, within range.
    every = [ab for ls in lines.values() for ab in ls]
    points = {low, high}
    for i, (a1, b1) in enumerate(every):
        for a2, b2 in every[i + 1:]:
            if b1 != b2:
                x = (a2 - a1) / (b1 - b2)
                if low < x < high:
                    points.add(x)
    best: tuple[float, str] | None = None
    for side in (sorted(p for p in points if p > 1), sorted((p for p in points if p < 1),
                                                             reverse=True)):
        prev = 1.0
        for x in side:
            hit = _segment_root(cases, winner, prev, x, value, inverse=False)
            if hit is not None:
                if best is None or abs(math.log(hit[0])) < abs(math.log(best[0])):
                    best = hit
                break
            prev = x
    return best


def _segment_root(cases: Mapping[str, CaseSensitivity], winner: str, x0: float, x1: float,
                  value: Callable[[str, float], float],
                  inverse: bool) -> tuple[float, str] | None:
    """Where, between ``x0`` (winner still wins) and ``x1``, another strategy first beats the
    winner, interpolating each difference linearly in ``x`` (in ``1 / x`` if ``inverse``)."""
    found: tuple[float, str] | None = None
    u0, u1 = (1 / x0, 1 / x1) if inverse else (x0, x1)
    for s in cases:
        if s == winner:
            continue
        g0 = value(s, x0) - value(winner, x0)
        g1 = value(s, x1) - value(winner, x1)
        if math.isnan(g0) or math.isnan(g1) or not g1 < 0:
            continue
        t = 0.0 if g0 <= 0 else g0 / (g0 - g1)
        u = u0 + t * (u1 - u0)
        x = 1 / u if inverse else u
        if found is None or abs(math.log(x)) < abs(math.log(found[0])):
            found = (x, s)
    return found


def _grid_flip(key: str, cases: Mapping[str, CaseSensitivity],
               winner: str) -> tuple[float, str] | None:
    """The flip of a field that changes the schedule, from the grid (module docstring)."""
    rate = key.partition(".")[2].startswith(_RATE_PREFIX)
    index = {f: i for i, f in enumerate(GRID_FACTORS)}

    def value(s: str, x: float) -> float:
        return cases[s].base if x == 1.0 else cases[s].grid[key][index[x]]

    best: tuple[float, str] | None = None
    for side in ([f for f in GRID_FACTORS if f > 1], [f for f in reversed(GRID_FACTORS)
                                                      if f < 1]):
        prev = 1.0
        for x in side:
            if any(math.isnan(value(s, x)) for s in cases):
                break
            hit = _segment_root(cases, winner, prev, x, value, inverse=rate)
            if hit is not None:
                if best is None or abs(math.log(hit[0])) < abs(math.log(best[0])):
                    best = hit
                break
            prev = x
    return best


def rank_robustness(cases: Sequence[CaseSensitivity], homogeneous: bool = True) -> Robustness:
    """Combine the strategies' :func:`case_sensitivity` figures into a :class:`Robustness`.

    Every case must come from the same cluster, scenario, metric, sample count and seed.
    Raises :class:`EnergyError` otherwise, or for no cases or a strategy given twice.
    """
    if not cases:
        raise EnergyError("a ranking needs at least one strategy")
    by_strategy = {c.strategy: c for c in cases}
    if len(by_strategy) != len(cases):
        raise EnergyError("each strategy may appear once in a ranking")
    first = cases[0]
    for c in cases:
        same = (c.metric == first.metric and c.scenario == first.scenario
                and c.seed == first.seed and len(c.samples) == len(first.samples)
                and set(c.lines) == set(first.lines) and set(c.grid) == set(first.grid))
        if not same:
            raise EnergyError(f"strategy {c.strategy} was analysed under other conditions than "
                              f"{first.strategy} (metric, scenario, fields, samples or seed)")
    base = {s: c.base for s, c in by_strategy.items()}
    ranking = tuple(sorted(base.items(), key=lambda kv: (kv[1], kv[0])))
    winner = ranking[0][0]
    flips: list[FieldFlip] = []
    if len(cases) > 1:
        for key in [*first.lines, *first.grid]:
            exact = key in first.lines
            hit = (_affine_flip(key, by_strategy, winner, first.metric) if exact
                   else _grid_flip(key, by_strategy, winner))
            flips.append(FieldFlip(key, hit[0] if hit else None, hit[1] if hit else None,
                                   exact))
    flips.sort(key=lambda f: (f.factor is None,
                              abs(math.log(f.factor)) if f.factor else 0.0, f.field))
    wins = dict.fromkeys(by_strategy, 0)
    for i in range(len(first.samples)):
        wins[_winner_at({s: c.samples[i] for s, c in by_strategy.items()})] += 1
    n = len(first.samples)
    shares = {s: (w / n if n else 0.0) for s, w in wins.items()}
    return Robustness(metric=first.metric, scenario=first.scenario, ranking=ranking,
                      flips=tuple(flips), shares=shares, samples=n, seed=first.seed,
                      homogeneous=homogeneous)


def robustness(plans: Mapping[str, Plan] | Sequence[Plan], cluster: Cluster,
               model: str | EnergyModel = "board", scenario: Scenario | str | None = None, *,
               metric: str = "max_device_j", samples: int = 64, seed: int = 0) -> Robustness:
    """The robustness of the ranking of ``plans`` (one per strategy) on ``cluster``."""
    items = list(plans.values()) if isinstance(plans, Mapping) else list(plans)
    cases = [case_sensitivity(p, cluster, model, scenario, metric=metric, samples=samples,
                              seed=seed) for p in items]
    return rank_robustness(cases, homogeneous=cluster.is_homogeneous)
