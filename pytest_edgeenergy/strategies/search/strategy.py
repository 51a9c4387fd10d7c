"""The ``search`` strategy: the best plan the engine can express, a layout per segment.

1. **Space.** The graph is cut where one tensor is live (:mod:`.segments`); a segment spans the
   layers between two cuts, up to a number of window layers set by the budget. Each segment is
   placed in one layout (:mod:`.layouts`): spatial bands fused one window layer at a time, two
   at a time or as one stack; output-channel; input-channel; or whole on any one device
   (consecutive segments on different devices make a pipeline cut). Split layouts come with
   the speed-proportional shares and with the shares that minimise the objective on this
   cluster (:mod:`.proportions`).
2. **Prices, once** (:mod:`.pricing`): each segment in each layout, and each transition between
   layouts, as small plan fragments estimated by the run's energy model.
3. **Combination** (:mod:`.dp`): a beam dynamic programme over the cuts gives the finalists.
4. **Exact check.** Each finalist, and each classic strategy (they are points of the space),
   is built as a whole plan by the PlanBuilder and estimated; the best that fits in every
   device's memory (and meets the deadline, when there is one) wins. A seeded local search then
   tries single-segment changes to the winner, each estimated exactly. The search is never
   worse than the best classic strategy, by construction.

Nothing depends on the clock: the budget is turned into counts (segment length, local-search
steps), so a seed and a budget give one plan.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ...cluster import Cluster
from ...energy.protocol import EnergyModel
from ...energy.registry import DEFAULT_ENERGY_MODEL
from ...energy.scenario import Scenario, as_scenario
from ...errors import PartitionError
from ...graph.layergraph import LayerGraph
from ...plan import Plan
from ...planner import PlanBuilder
from ..protocol import ClusterLike
from .dp import Pricing, best_paths
from .layouts import CLASSIC, Layout, apply_classic, windows
from .memo import MEMO, Remembered, search_key
from .objective import Measured, check_goal, measure, unit_costs
from .pricing import Cost, Option, Pricer, Regions
from .proportions import optimal_shares
from .segments import Span, cut_points, spans

__all__ = ["SearchReport", "SearchStrategy", "SegmentChoice"]

WORK_PER_BUDGET_S = 2500
"""Layer placements per second of budget when pricing segments (a layer placed on every
device counts once per device). A fixed rate, so that the budget decides counts and the search
never reads the clock; conservative (resnet101 on 4 devices prices about 19,500 placements in
about 3 s of CPU on a two-core machine), because the whole search is several times the pricing
of segments."""
LOCAL_STEPS_PER_BUDGET_S = 0.5
"""Single-segment changes tried on the winner per second of budget."""
MAX_WINDOWS = (6, 4, 3, 2, 1)
"""Longest segments tried, in window layers, the longest that fits the budget first."""
BEAM = 4
FINALISTS = 3
TILT = 1e-6
"""Relative tilt of the shares that sends split remainders to the higher-numbered devices."""


@dataclass(frozen=True, slots=True)
class SegmentChoice:
    """What one segment chose, and its best alternative (by the estimated objective)."""

    first: str
    last: str
    layout: str
    alternative: str
    alternative_delta: float  # relative change of the estimated objective with it, >= 0


@dataclass(slots=True)
class SearchReport:
    """How a search went: what it chose, against what, at what cost."""

    objective: str
    deadline_s: float | None
    value: float  # the chosen plan's objective, exact
    makespan_s: float
    scenario: str = ""  # the scenario's text when it is not the default
    classic: dict[str, float] = field(default_factory=dict)  # exact objective per classic
    classic_makespan_s: dict[str, float] = field(default_factory=dict)
    kept_classic: str | None = None  # the classic strategy kept when nothing beat it
    segments: list[SegmentChoice] = field(default_factory=list)
    fragments: int = 0  # segment and transition fragments priced
    partials: int = 0  # partial paths priced by the dynamic programme
    simulated: int = 0  # whole plans built and estimated exactly
    max_windows: int = 0
    time_s: float = 0.0  # wall clock of the whole search
    cpu_s: float = 0.0  # CPU time of this process during it
    # rebuilt from an identical search earlier in this process; not in the summary, so that
    # a report does not depend on which test searched first
    reused: bool = False

    @property
    def candidates(self) -> int:
        """Everything priced: fragments, partial paths and whole plans."""
        return self.fragments + self.partials + self.simulated

    def best_classic(self) -> tuple[str, float]:
        """The classic strategy with the lowest objective, and that objective."""
        name = min(self.classic, key=lambda k: (self.classic[k], k))
        return name, self.classic[name]

    def summary(self) -> str:
        """Plain text for the plan's notes and reports: the result against the classic
        strategies, what each segment chose and its best alternative, and the search's cost."""
        goal = self.objective + ("" if self.deadline_s is None
                                 else f" with makespan <= {self.deadline_s:.4g} s")
        if self.scenario:
            goal += f" under scenario {self.scenario}"
        name, best = self.best_classic()
        gain = 0.0 if best == 0 else 100.0 * (best - self.value) / best
        rows = ", ".join(f"{k} {v:.4g}" for k, v in self.classic.items())
        kept = ("" if self.kept_classic is None
                else f"; no composed plan beat the classic '{self.kept_classic}', kept")
        lines = [f"search minimised {goal}: {self.value:.4g} (makespan {self.makespan_s:.4g} s) "
                 f"vs classic {rows}; {gain:.1f} % below the best classic ({name}){kept}"]
        for k, seg in enumerate(self.segments):
            lines.append(f"segment {k} ({seg.first}..{seg.last}): {seg.layout}; best "
                         f"alternative {seg.alternative} ({100 * seg.alternative_delta:+.1f} % "
                         f"estimated)")
        lines.append(f"{self.candidates} candidates priced ({self.fragments} fragments, "
                     f"{self.partials} partial paths, {self.simulated} whole plans) in "
                     f"{self.time_s:.2f} s wall, {self.cpu_s:.2f} s CPU")
        return "\n".join(lines)


def _as_cluster(cluster: ClusterLike) -> Cluster:
    if isinstance(cluster, Cluster):
        return cluster
    raise PartitionError(f"strategy 'search' prices plans on the devices' profiles, so it needs a "
                         f"Cluster, got {type(cluster).__name__} {cluster!r}")


class SearchStrategy:
    """Choose a layout and split proportions per segment, for the lowest objective."""

    name = "search"

    def __init__(self, objective: str = "max_device_j", deadline_s: float | None = None,
                 budget_s: float = 10.0, seed: int = 0,
                 energy_model: str | EnergyModel = DEFAULT_ENERGY_MODEL,
                 scenario: Scenario | str | None = None) -> None:
        self.goal = check_goal(objective, deadline_s)
        if (isinstance(budget_s, bool) or not isinstance(budget_s, int | float)
                or not budget_s > 0):
            raise PartitionError(f"strategy 'search' parameter budget_s must be a positive "
                                 f"number of seconds, got {budget_s!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise PartitionError(f"strategy 'search' parameter seed must be an integer, "
                                 f"got {seed!r}")
        self.budget_s = float(budget_s)
        self.seed = seed
        self.energy_model = energy_model
        self.scenario = scenario
        self.params: dict[str, Any] = {"objective": objective, "deadline_s": deadline_s,
                                       "budget_s": budget_s, "seed": seed}
        #: how the last call of :meth:`plan` went
        self.last: SearchReport | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # ---- the space ----------------------------------------------------------------------
    def _share_sets(self, cluster: Cluster) -> list[tuple[str, tuple[float, ...]]]:
        """Split proportions to try: by speed and optimal for the objective (when they differ),
        each also tilted so that rows or channels that do not divide evenly go to the
        higher-numbered devices instead of the lower (segments can then take turns, and the
        remainders even out over the network)."""
        speeds, per_mac, static_w = unit_costs(cluster, self.energy_model)
        total = sum(speeds)
        base = [("speed", tuple(v / total for v in speeds))]
        if len(cluster) > 1:
            # under a deadline the makespan still matters: speed shares stay in the set
            best = optimal_shares(self.goal.objective, speeds, per_mac, static_w)
            if max(abs(a - b) for a, b in zip(best, base[0][1], strict=True)) > 0.01:
                base.append(("energy", best))
        out = []
        for name, shares in base:
            out.append((name, shares))
            out.append((f"{name}, remainders high",
                        tuple(s * (1 + TILT * d) for d, s in enumerate(shares))))
        return out

    def _layouts(self, span: Span, graph: LayerGraph, cluster: Cluster,
                 share_sets: Sequence[tuple[str, tuple[float, ...]]]) -> list[Layout]:
        n = len(cluster)
        out = [Layout("device", device=d) for d in _whole_devices(cluster)]
        if n == 1:
            return out
        w = windows(graph.layers[span.start:span.stop])
        fuses = sorted({min(f, w) for f in (1, 2)} | {0}) if w > 0 else [1]
        for name, shares in share_sets:
            tilted = "remainders" in name
            for f in fuses:
                if f != 0 and f >= w and w > 0:
                    continue  # the same as one stack
                out.append(Layout("spatial", fuse=f, shares=shares, shares_name=name))
            out.append(Layout("output-channel", shares=shares, shares_name=name))
            if not tilted:
                out.append(Layout("input-channel", shares=shares, shares_name=name))
        return out

    # ---- building whole plans -----------------------------------------------------------
    def _build(self, graph: LayerGraph, cluster: Cluster, path: Sequence[Option] | None,
               classic: str | None = None) -> Plan:
        b = PlanBuilder(graph, cluster.speeds, self.name, self.params)
        if classic is not None:
            apply_classic(classic, b, graph)
            for layer in graph.layers:
                b.notes[layer.name] = f"as classic '{classic}': {b.notes.get(layer.name, '')}"
            return b.finish()
        for k, opt in enumerate(path or ()):
            layers = graph.layers[opt.span.start:opt.span.stop]
            opt.layout.apply(b, graph, layers)
            head = (f"segment {k} ({layers[0].name}..{layers[-1].name}): "
                    f"{opt.layout.describe()}")
            for layer in layers:
                how = b.notes.get(layer.name)
                b.notes[layer.name] = head if not how else f"{head}; {how}"
        return b.finish()

    def _exact(self, plan: Plan, cluster: Cluster) -> Measured:
        return measure(plan, cluster, self.energy_model, self.scenario)

    def _key(self, m: Measured) -> tuple[float, float, float]:
        return self.goal.key(m.device_j, m.time_s, m.fits)

    # ---- the search ---------------------------------------------------------------------
    def plan(self, graph: LayerGraph, cluster: ClusterLike) -> Plan:
        """Search the space for ``graph`` on ``cluster`` and return the best plan found."""
        started, started_cpu = time.perf_counter(), time.process_time()
        devices = _as_cluster(cluster)
        key = search_key(graph, devices, self.params, self.energy_model, self.scenario)
        remembered = MEMO.get(key)
        if remembered is not None:
            return self._rebuild(graph, devices, remembered)
        pricer = Pricer(graph, devices, self.energy_model, self.scenario)
        _, _, static_w = unit_costs(devices, self.energy_model)
        pricing = Pricing(self.goal, static_w, tuple(p.memory_bytes for p in devices.devices))
        share_sets = self._share_sets(devices)
        report = SearchReport(self.goal.objective, self.goal.deadline_s, 0.0, 0.0,
                              _scenario_text(self.scenario))

        # the space, as long a segment as the budget allows
        limit = self.budget_s * WORK_PER_BUDGET_S
        chosen: list[Span] = []
        for max_w in MAX_WINDOWS:
            chosen = spans(graph, max_w)
            report.max_windows = max_w
            size = sum(len(self._layouts(s, graph, devices, share_sets)) * (s.stop - s.start)
                       for s in chosen) * len(devices)
            if size <= limit:
                break
        options = _distinct(opt for s in chosen
                            for lay in self._layouts(s, graph, devices, share_sets)
                            if (opt := pricer.option(s, lay)) is not None)
        cuts = [c for c, _ in cut_points(graph)]
        finals, report.partials = best_paths(pricer, options, cuts, pricing, BEAM, FINALISTS)

        # exact estimates: the finalists and the classic strategies
        scored: list[tuple[tuple[float, float, float], int, Plan, Measured,
                           tuple[Option, ...] | None, str | None]] = []
        for rank, (_, final) in enumerate(finals):
            plan = self._build(graph, devices, final)
            m = self._exact(plan, devices)
            scored.append((self._key(m), rank, plan, m, final, None))
        for rank, name in enumerate(CLASSIC, start=len(finals)):
            plan = self._build(graph, devices, None, name)
            m = self._exact(plan, devices)
            report.classic[name] = self.goal.value(m.device_j, m.time_s)
            report.classic_makespan_s[name] = m.time_s
            scored.append((self._key(m), rank, plan, m, None, name))
        report.simulated = len(scored)
        scored.sort(key=lambda s: (s[0], s[1]))
        _, _, plan, best, winner, kept = scored[0]
        path: tuple[Option, ...] | None = winner

        # seeded local search: one segment at a time, each change estimated exactly
        if path is not None:
            plan, best, path, tried = self._improve(graph, devices, options, plan, best, path)
            report.simulated += tried
        report.kept_classic = kept
        report.value = self.goal.value(best.device_j, best.time_s)
        report.makespan_s = best.time_s
        if path is not None:
            report.segments = self._explain(graph, pricer, options, path, pricing)
            self._annotate(plan, graph, report.segments, path)
        report.fragments = pricer.fragments
        report.time_s = time.perf_counter() - started
        report.cpu_s = time.process_time() - started_cpu
        plan.notes["search"] = report.summary()
        self.last = report
        MEMO.put(key, Remembered(path, kept if path is None else None, report))
        return plan

    def _rebuild(self, graph: LayerGraph, cluster: Cluster, remembered: Remembered) -> Plan:
        """The plan an identical earlier search chose, built again for ``graph``."""
        report = replace(remembered.report, reused=True)
        plan = self._build(graph, cluster, remembered.path, remembered.classic)
        if remembered.path is not None:
            self._annotate(plan, graph, report.segments, remembered.path)
        plan.notes["search"] = report.summary()
        self.last = report
        return plan

    def _improve(self, graph: LayerGraph, cluster: Cluster, options: Sequence[Option],
                 plan: Plan, best: Measured, path: tuple[Option, ...]
                 ) -> tuple[Plan, Measured, tuple[Option, ...], int]:
        rng = random.Random(self.seed)
        by_span: dict[Span, list[Option]] = {}
        for opt in options:
            by_span.setdefault(opt.span, []).append(opt)
        steps = max(1, int(self.budget_s * LOCAL_STEPS_PER_BUDGET_S))
        for _ in range(steps):
            k = rng.randrange(len(path))
            others = [o for o in by_span[path[k].span] if o.layout != path[k].layout]
            if not others:
                continue
            trial = (*path[:k], rng.choice(others), *path[k + 1:])
            candidate = self._build(graph, cluster, trial)
            m = self._exact(candidate, cluster)
            if self._key(m) < self._key(best):
                plan, best, path = candidate, m, trial
        return plan, best, path, steps

    def _explain(self, graph: LayerGraph, pricer: Pricer, options: Sequence[Option],
                 path: tuple[Option, ...], pricing: Pricing) -> list[SegmentChoice]:
        """Per segment, the alternative layout that would cost least in the chosen path."""
        base = pricing.value(pricer.path(path))
        choices = []
        for k, opt in enumerate(path):
            alternatives = []
            for other in options:
                if other.span != opt.span or other.layout == opt.layout:
                    continue
                cost = pricer.path((*path[:k], other, *path[k + 1:]))
                alternatives.append((pricing.key(cost), other.layout.describe(), cost))
            layers = graph.layers[opt.span.start:opt.span.stop]
            if alternatives:
                _, text, cost = min(alternatives, key=lambda a: (a[0], a[1]))
                value = pricing.value(cost)
                delta = (value - base) / base if base > 0 else 0.0
            else:
                text, delta = "none", 0.0
            choices.append(SegmentChoice(layers[0].name, layers[-1].name,
                                         opt.layout.describe(), text, delta))
        return choices

    @staticmethod
    def _annotate(plan: Plan, graph: LayerGraph, segments: Sequence[SegmentChoice],
                  path: Sequence[Option]) -> None:
        for choice, opt in zip(segments, path, strict=True):
            first = graph.layers[opt.span.start].name
            plan.notes[first] += (f" [best alternative for this segment: {choice.alternative}, "
                                  f"{100 * choice.alternative_delta:+.1f} % estimated]")

    def for_run(self, energy_model: str | EnergyModel,
                scenario: Scenario | str | None = None) -> SearchStrategy:
        """This search, pricing plans with the run's energy model and scenario."""
        p = self.params
        return SearchStrategy(p["objective"], p["deadline_s"], p["budget_s"], p["seed"],
                              energy_model, scenario)


def _whole_devices(cluster: Cluster) -> list[int]:
    """The devices a segment may run whole on: device 0 (it holds the image), device 1 and the
    last device (a pipeline needs somewhere to go), and the first device of every other kind
    of profile. On identical devices the rest are the same choices under another number."""
    picked = {0, min(1, len(cluster) - 1), len(cluster) - 1}
    seen = {cluster.devices[d] for d in picked}
    for d, profile in enumerate(cluster.devices):
        if profile not in seen:
            seen.add(profile)
            picked.add(d)
    return sorted(picked)


def _scenario_text(scenario: Scenario | str | None) -> str:
    """The scenario's text, or "" for none or the default one."""
    conditions = as_scenario(scenario)
    return "" if conditions.is_default else str(conditions)


def _distinct(options: Iterable[Option]) -> list[Option]:
    """The options, less those that place a segment exactly as an earlier one does (a tilt
    with no remainder to move, spatial bands over layers with no rows, ...): same needs, same
    output pieces, same price. The first, simplest, name is kept."""
    seen: set[tuple[Span, Regions, Regions, Cost]] = set()
    out = []
    for opt in options:
        key = (opt.span, opt.need, opt.exit, opt.cost)
        if key not in seen:
            seen.add(key)
            out.append(opt)
    return out
