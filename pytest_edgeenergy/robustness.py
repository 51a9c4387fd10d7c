"""Combine strategies' sensitivity figures into the robustness of a ranking (pure data).

:func:`pytest_edgeenergy.energy.sensitivity.case_sensitivity` prices one strategy's plan under
changed profile figures and returns a :class:`CaseSensitivity`; :func:`rank_robustness` combines
one per strategy into a :class:`Robustness` (margin, flip factors, shares of wins). This module
imports neither torch nor pytest, so the report (and a pytest-xdist controller, which has no
plans) can rank the figures the workers computed. The method is described in
``docs/energy-model.md`` ("Robustness") and :mod:`pytest_edgeenergy.energy.sensitivity`.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from .errors import EdgeEnergyError

__all__ = [
    "GRID_FACTORS",
    "JOINT_HIGH",
    "JOINT_LOW",
    "MAX_FACTOR",
    "METRICS",
    "MIN_FACTOR",
    "CaseSensitivity",
    "FieldFlip",
    "Robustness",
    "joint_draws",
    "rank_robustness",
]

MIN_FACTOR: Final = 1 / 16
MAX_FACTOR: Final = 16.0
GRID_FACTORS: Final = tuple(2 ** (k / 4) for k in range(-16, 17))
"""The factors at which a field that changes the schedule is evaluated (1/16 to 16)."""

JOINT_LOW: Final = 0.5
JOINT_HIGH: Final = 2.0

METRICS: Final = ("max_device_j", "total_j", "mean_device_j")
"""What a ranking compares: the worst device's, all devices', or the mean device's joules."""

_RATE_PREFIX: Final = ("macs_per_s", "mem_bytes_per_s", "net_bytes_per_s")


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
    sides = (sorted(p for p in points if p > 1), sorted((p for p in points if p < 1),
                                                        reverse=True))
    return _nearest_flip(sides, lambda x0, x1: _segment_root(cases, winner, x0, x1, value,
                                                             inverse=False))


Flip = tuple[float, str]  # the factor, and the strategy that wins from it on


def _nearest_flip(sides: Iterable[Sequence[float]], root: Callable[[float, float], Flip | None],
                  stop: Callable[[float], bool] = lambda x: False) -> Flip | None:
    """Walk each side's factors outward from 1, segment by segment (until ``stop``): the first
    segment ``root`` finds a flip in gives that side's flip; the one nearer to 1 (by ratio) of
    the sides' flips is returned."""
    best: Flip | None = None
    for side in sides:
        prev = 1.0
        for x in side:
            if stop(x):
                break
            hit = root(prev, x)
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

    sides = ([f for f in GRID_FACTORS if f > 1], [f for f in reversed(GRID_FACTORS) if f < 1])
    return _nearest_flip(
        sides, lambda x0, x1: _segment_root(cases, winner, x0, x1, value, inverse=rate),
        stop=lambda x: any(math.isnan(value(s, x)) for s in cases))


def rank_robustness(cases: Sequence[CaseSensitivity], homogeneous: bool = True) -> Robustness:
    """Combine the strategies' :func:`case_sensitivity` figures into a :class:`Robustness`.

    Every case must come from the same cluster, scenario, metric, sample count and seed.
    Raises :class:`EnergyError` otherwise, or for no cases or a strategy given twice.
    """
    if not cases:
        raise EdgeEnergyError("a ranking needs at least one strategy")
    by_strategy = {c.strategy: c for c in cases}
    if len(by_strategy) != len(cases):
        raise EdgeEnergyError("each strategy may appear once in a ranking")
    first = cases[0]
    for c in cases:
        same = (c.metric == first.metric and c.scenario == first.scenario
                and c.seed == first.seed and len(c.samples) == len(first.samples)
                and set(c.lines) == set(first.lines) and set(c.grid) == set(first.grid))
        if not same:
            raise EdgeEnergyError(f"strategy {c.strategy} was analysed under other conditions than "
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


