"""Robustness of a ranking: margins, closed-form and grid flip points, joint draws."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable

import pytest
from energy_cases import STRATEGIES, P, small_plan

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.energy import estimate_energy
from pytest_edgeenergy.energy.scenario import Scenario
from pytest_edgeenergy.energy.sensitivity import case_sensitivity, robustness, sensitivity_fields
from pytest_edgeenergy.errors import EdgeEnergyError
from pytest_edgeenergy.robustness import GRID_FACTORS, CaseSensitivity, rank_robustness


def case(strategy: str, base: float, lines: dict[str, tuple[tuple[float, float], ...]],
         grid: dict[str, tuple[float, ...]] | None = None,
         samples: tuple[float, ...] = ()) -> CaseSensitivity:
    """A strategy's figures, written by hand."""
    grid = grid or {}
    return CaseSensitivity(strategy=strategy, metric="max_device_j", scenario="s", base=base,
                           lines=lines, grid=grid,
                           bounds=dict.fromkeys([*lines, *grid], (1 / 16, 16.0)),
                           samples=samples, seed=0)


def test_two_lines_cross_where_the_hand_calculation_says() -> None:
    # A: 1 + x joules, B: 2.5 + 0.5 x: A wins at x = 1 (2 J against 3 J) until x = 3.
    a = case("a", 2.0, {"dev.idle_w": ((1.0, 1.0),)})
    b = case("b", 3.0, {"dev.idle_w": ((2.5, 0.5),)})
    r = rank_robustness([a, b])
    assert (r.winner, r.runner_up) == ("a", "b")
    assert r.margin == pytest.approx(0.5)
    [flip] = r.flips
    assert flip.factor == pytest.approx(3.0) and flip.new_winner == "b" and flip.exact
    assert "a wins by 50.0%; stays the winner unless idle_w x3 (-> b)" in r.headline()


def test_the_worst_device_of_each_strategy_decides_a_max_device_crossing() -> None:
    # A's devices: 1 + x and 2.2 (flat), so A = max(1 + x, 2.2); B = 0.5 + 0.6 x. At x = 1
    # A = 2.2 and B = 1.1: B wins, and stays below A for every x in 1/16..16 (A >= 2.2 and
    # A >= 1 + x grow at least as fast as B), so no factor flips it...
    a = case("a", 2.2, {"d.f": ((1.0, 1.0), (2.2, 0.0))})
    b = case("b", 1.1, {"d.f": ((0.5, 0.6),)})
    r = rank_robustness([a, b])
    assert r.winner == "b" and r.flips[0].factor is None
    # ... but with B's line steeper, 0.5 + 1.6 x reaches max_A = max(1 + x, 2.2) at x = 1.0625
    # (2.2 = 0.5 + 1.6 x gives x = 1.0625, where 1 + x = 2.0625 < 2.2).
    steep = case("b", 2.1, {"d.f": ((0.5, 1.6),)})
    r = rank_robustness([a, steep])
    assert r.flips[0].factor == pytest.approx(1.0625)


def test_a_grid_flip_is_interpolated_in_one_over_the_factor_for_a_rate() -> None:
    # A = 1 + 1/x J (a duration at a rate x), B = 1.8 J flat: at x = 1 B wins (1.8 < 2);
    # A wins once 1/x < 0.8, at x = 1.25, between the grid factors 2^(1/4) and 2^(2/4).
    def grid(f: Callable[[float], float]) -> tuple[float, ...]:
        return tuple(f(x) for x in GRID_FACTORS)
    a = case("a", 2.0, {}, {"d.macs_per_s": grid(lambda x: 1 + 1 / x)})
    b = case("b", 1.8, {}, {"d.macs_per_s": grid(lambda x: 1.8)})
    r = rank_robustness([a, b])
    assert r.winner == "b"
    assert r.flips[0].factor == pytest.approx(1.25, rel=1e-12)  # exact: A is linear in 1/x
    assert not r.flips[0].exact


def test_closed_form_flips_match_a_direct_estimate_at_the_flip_point() -> None:
    cluster = Cluster((P,) * 2)
    plans = {s: small_plan(s, 2) for s in STRATEGIES}
    r = robustness(plans, cluster, samples=0)
    for flip in r.flips:
        if not flip.exact or flip.factor is None:
            continue
        field = flip.field.partition(".")[2]
        for nudge, expected in ((0.999, r.winner), (1.001, flip.new_winner)):
            x = flip.factor * (nudge if flip.factor > 1 else 2 - nudge)
            changed = Cluster((dataclasses.replace(P, **{field: getattr(P, field) * x}),) * 2)
            values = {s: estimate_energy(p, changed).max_device_j for s, p in plans.items()}
            assert min(values, key=lambda s: values[s]) == expected


def test_joint_draws_are_seeded_and_their_shares_add_up_to_one() -> None:
    cluster = Cluster((P,) * 3)
    plans = [small_plan(s, 3) for s in STRATEGIES]
    one = robustness(plans, cluster, samples=20, seed=7)
    again = robustness(plans, cluster, samples=20, seed=7)
    assert one == again
    assert math.isclose(sum(one.shares.values()), 1.0)
    assert one.samples == 20


def test_the_fields_varied_follow_the_scenario() -> None:
    sleepy = dataclasses.replace(P, sleep_w=0.1, wake_s=1e-3, wake_j=1e-3,
                                 macs_per_s_by_kind=(("conv", 2e6),))
    cluster = Cluster((sleepy,))
    plain = sensitivity_fields(cluster, Scenario())
    assert "pencil.sleep_w" not in plain and "pencil.macs_per_s" in plain
    more = sensitivity_fields(cluster, Scenario(power="sleep", compute="per-kind"))
    assert {"pencil.sleep_w", "pencil.wake_j", "pencil.macs_per_s_by_kind.conv"} <= set(more)


def test_idle_power_is_not_searched_past_active_power() -> None:
    plan = small_plan("spatial", 2)
    c = case_sensitivity(plan, Cluster((P, P)), samples=0)
    assert c.bounds["pencil.idle_w"] == (1 / 16, P.active_w / P.idle_w)


def test_cases_from_other_conditions_are_not_ranked_together() -> None:
    a = case("a", 1.0, {"d.f": ((1.0, 0.0),)})
    b = dataclasses.replace(case("b", 2.0, {"d.f": ((2.0, 0.0),)}), seed=1)
    with pytest.raises(EdgeEnergyError, match="other conditions"):
        rank_robustness([a, b])


def test_a_case_survives_its_json_form() -> None:
    c = case_sensitivity(small_plan("layer", 2), Cluster((P, P)), samples=3)
    text = json.dumps(c.to_dict())
    assert CaseSensitivity.from_dict(json.loads(text)).to_dict() == c.to_dict()
