"""Write the generated tables of ``docs/energy-model.md``, from plans alone, and time the matrix.

Run from anywhere::

    python docs/energy_tables.py          # rewrite the tables between the marker comments
    python docs/energy_tables.py --check  # exit 1 if the doc's tables are out of date

Every table is computed from plans (graphs traced on meta tensors, no inference run) and the
shipped ``rpi4`` profile, so the output is the same on every machine: rerunning the script
changes nothing unless the engine, the zoo, the profile or the energy model changed. The
timing of the full matrix (every zoo model x the four strategies x 2, 4 and 8 devices) is
printed, not written, since it varies from run to run.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
if not (REPO / "pytest_edgeenergy").is_dir():  # pragma: no cover - the script lives in docs/
    raise SystemExit(f"expected the package next to {Path(__file__).parent}")
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from pytest_edgeenergy.atomic import write_atomic  # noqa: E402
from pytest_edgeenergy.cluster import Cluster  # noqa: E402
from pytest_edgeenergy.energy import (  # noqa: E402
    EnergyEstimate,
    Scenario,
    estimate_energy,
    get_energy_model,
    parse_scenario,
)
from pytest_edgeenergy.energy.sensitivity import robustness  # noqa: E402
from pytest_edgeenergy.errors import ProfileError  # noqa: E402
from pytest_edgeenergy.graph.build import build_graph  # noqa: E402
from pytest_edgeenergy.graph.layergraph import LayerGraph  # noqa: E402
from pytest_edgeenergy.plan import Plan  # noqa: E402
from pytest_edgeenergy.profiles import DeviceProfile, load_device  # noqa: E402
from pytest_edgeenergy.robustness import Robustness  # noqa: E402
from pytest_edgeenergy.strategies import get_strategy  # noqa: E402
from pytest_edgeenergy.zoo import build_model, list_models, model_input_shape  # noqa: E402

DOC = REPO / "docs" / "energy-model.md"
STRATEGIES = ("layer", "spatial", "output-channel", "input-channel")
TABLE_MODELS = ("vgg19", "resnet101", "yolov2")
DEVICE_COUNTS = (2, 4, 8)
DEVICE = "rpi4"
# Link variants, TCP goodput at MTU 1500 (the rpi4 profile's own derivation, x 1/10 and x 10).
LINKS_BYTES_PER_S = {
    "Fast Ethernet (100 Mbit/s)": 1.176e7,
    "Gigabit Ethernet (the profile)": 1.176e8,
    "10 Gigabit Ethernet": 1.176e9,
}
LINK_DEVICES = 4

T = TypeVar("T")


@dataclasses.dataclass
class Timings:
    """Seconds spent in each phase of the matrix."""

    build_model_s: float = 0.0
    build_graph_s: float = 0.0
    plan_s: float = 0.0
    estimate_s: float = 0.0
    plans: int = 0
    slowest: list[tuple[float, str]] = dataclasses.field(default_factory=list)

    @property
    def total_s(self) -> float:
        """All phases."""
        return self.build_model_s + self.build_graph_s + self.plan_s + self.estimate_s


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


class Matrix:
    """Graphs and plans, each made once, with the time it took."""

    def __init__(self, device: DeviceProfile) -> None:
        self.device = device
        self.timings = Timings()
        self.graphs: dict[str, LayerGraph] = {}
        self.plans: dict[tuple[str, str, int], Plan] = {}

    def graph(self, model: str) -> LayerGraph:
        """The layer graph of a zoo model."""
        if model not in self.graphs:
            module, build_s = timed(lambda: build_model(model))
            graph, graph_s = timed(lambda: build_graph(module, model_input_shape(model)))
            self.timings.build_model_s += build_s
            self.timings.build_graph_s += graph_s
            self.graphs[model] = graph
        return self.graphs[model]

    def plan(self, model: str, strategy: str, n: int) -> Plan:
        """``model`` split by ``strategy`` over ``n`` identical devices (plans depend only on
        the devices' relative speeds)."""
        key = (model, strategy, n)
        if key not in self.plans:
            graph = self.graph(model)
            speeds = Cluster.homogeneous(self.device, n)
            plan, plan_s = timed(lambda: get_strategy(strategy).plan(graph, speeds))
            self.timings.plan_s += plan_s
            self.timings.plans += 1
            self.timings.slowest.append((plan_s, f"{model} {strategy} {n}"))
            self.plans[key] = plan
        return self.plans[key]

    def estimate(self, model: str, strategy: str, cluster: Cluster,
                 energy_model: str = "board",
                 scenario: Scenario | None = None) -> EnergyEstimate:
        """The energy estimate of a plan on ``cluster`` (under ``scenario``)."""
        plan = self.plan(model, strategy, len(cluster))
        estimate, estimate_s = timed(lambda: estimate_energy(plan, cluster, model=energy_model,
                                                             scenario=scenario))
        self.timings.estimate_s += estimate_s
        return estimate


# ---- tables ---------------------------------------------------------------------------------

def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned."""
    align = ["---" if i == 0 or not rows or not _numeric(rows[0][i]) else "--:"
             for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"\**[-+0-9.,%]+\**", cell))


def bold_min(cells: list[str], values: list[float]) -> list[str]:
    """Bold the cell of the smallest value (ties: all of them)."""
    best = min(values)
    return [f"**{c}**" if v == best else c for c, v in zip(cells, values, strict=True)]


def estimate_row(model: str, devices: str, strategy: str, e: EnergyEstimate,
                 max_cell: str | None = None) -> list[str]:
    """One row of the main table."""
    static = sum(d.static_j for d in e.devices) / e.total_j
    return [model, devices, strategy, max_cell or f"{e.max_device_j:.2f}",
            f"{e.mean_device_j:.2f}", f"{e.total_j:.2f}", f"{e.comm_bytes / 1e6:.1f}",
            f"{e.makespan_s:.3f}", f"{100 * static:.0f}%", "yes" if e.fits else "**no**"]


def main_table(matrix: Matrix, rpi4: DeviceProfile) -> str:
    """Per-device energy of the four strategies on 2, 4 and 8 rpi4 (the board model), after
    the model on one device."""
    rows: list[list[str]] = []
    for model in TABLE_MODELS:
        rows.append(estimate_row(model, "1", "(unpartitioned)",
                                 matrix.estimate(model, "layer", Cluster.homogeneous(rpi4, 1))))
        for n in DEVICE_COUNTS:
            cluster = Cluster.homogeneous(rpi4, n)
            estimates = [matrix.estimate(model, s, cluster) for s in STRATEGIES]
            max_cells = bold_min([f"{e.max_device_j:.2f}" for e in estimates],
                                 [round(e.max_device_j, 2) for e in estimates])
            for strategy, e, max_cell in zip(STRATEGIES, estimates, max_cells, strict=True):
                rows.append(estimate_row(model, str(n), strategy, e, max_cell))
    return markdown(["model", "devices", "strategy", "max J", "mean J", "total J", "comm MB",
                     "makespan s", "static share", "fits"], rows)


def link_table(matrix: Matrix, rpi4: DeviceProfile) -> str:
    """Max per-device energy on 4 rpi4 with a slower and a faster link."""
    rows: list[list[str]] = []
    for model in TABLE_MODELS:
        for link, rate in LINKS_BYTES_PER_S.items():
            device = dataclasses.replace(rpi4, net_bytes_per_s=rate)
            cluster = Cluster.homogeneous(device, LINK_DEVICES)
            estimates = [matrix.estimate(model, s, cluster) for s in STRATEGIES]
            cells = bold_min([f"{e.max_device_j:.2f} ({e.makespan_s:.2f} s)" for e in estimates],
                             [round(e.max_device_j, 2) for e in estimates])
            rows.append([model, link, *cells])
    return markdown(["model", "link", *(f"{s} max J (makespan)" for s in STRATEGIES)], rows)


def ops_table(matrix: Matrix, rpi4: DeviceProfile) -> str:
    """Max per-device energy under the ops model, split into its terms, on 4 rpi4."""
    rows: list[list[str]] = []
    cluster = Cluster.homogeneous(rpi4, LINK_DEVICES)
    for model in TABLE_MODELS:
        for energy_model in ("board", "ops"):
            estimates = [matrix.estimate(model, s, cluster, energy_model) for s in STRATEGIES]
            cells = []
            for e in estimates:
                worst = max(e.devices, key=lambda d: d.total_j)
                cells.append(f"{worst.total_j:.2f} = {worst.compute_j:.2f} + "
                             f"{worst.comm_j:.2f} + {worst.static_j:.2f}")
            rows.append([model, energy_model,
                         *bold_min(cells, [round(e.max_device_j, 2) for e in estimates])])
    return markdown(["model", "energy model",
                     *(f"{s}: max J = compute + comm + static" for s in STRATEGIES)], rows)


def excess_table(matrix: Matrix, rpi4: DeviceProfile) -> str:
    """Compute energy of the channel splits over all devices, against one device's."""
    rows: list[list[str]] = []
    one = Cluster.homogeneous(rpi4, 1)
    for model in list_models():
        cells = []
        for strategy in ("output-channel", "input-channel"):
            base_j = matrix.estimate(model, strategy, one).devices[0].compute_j
            for n in DEVICE_COUNTS:
                e = matrix.estimate(model, strategy, Cluster.homogeneous(rpi4, n))
                excess = sum(d.compute_j for d in e.devices) / base_j - 1
                cells.append(f"{100 * excess:+.1f}%")
        rows.append([model, *cells])
    header = ["model", *(f"{s} {n} dev" for s in ("output-channel", "input-channel")
                         for n in DEVICE_COUNTS)]
    return markdown(header, rows)


def full_matrix(matrix: Matrix, rpi4: DeviceProfile) -> None:
    """Plan and estimate every zoo model x strategy x device count (for the timing)."""
    for model in list_models():
        for n in DEVICE_COUNTS:
            cluster = Cluster.homogeneous(rpi4, n)
            for strategy in STRATEGIES:
                matrix.estimate(model, strategy, cluster)


# ---- scenario findings ------------------------------------------------------------------------

FINDING_MODELS = ("vgg19", "resnet101", "yolov2", "mobilenet_v2")
FINDING_DEVICES = ("rpi4", "jetson-nano-10w")
ROBUSTNESS_DEVICES = 4
ROBUSTNESS_SAMPLES = 32
ROBUSTNESS_SEED = 0


@dataclasses.dataclass(frozen=True)
class Condition:
    """One column of the findings: a scenario, and how it changes a device (if it does)."""

    label: str
    scenario: Scenario
    device: Callable[[DeviceProfile], DeviceProfile | None] = lambda p: p
    what: str = ""


def _wifi(profile: DeviceProfile) -> DeviceProfile | None:
    """The profile's Wi-Fi twin (``rpi4`` -> ``rpi4-wifi``), if one is shipped."""
    try:
        return load_device(f"{profile.name}-wifi")
    except ProfileError:  # no Wi-Fi profile for this device: no cell
        return None


def _free_wake(profile: DeviceProfile) -> DeviceProfile:
    """What if waking cost nothing (hypothetical: sleep_w as the profile says)?"""
    return dataclasses.replace(profile, wake_s=0.0, wake_j=0.0)


CONDITIONS = (
    Condition("one image", parse_scenario(""), what="the default: one isolated image, every "
              "device always on, half-duplex switched links"),
    Condition("stream", parse_scenario("workload=stream"),
              what="images back to back; joules per image in steady state"),
    Condition("sleep", parse_scenario("power=sleep"),
              what="idle devices sleep at sleep_w when that is cheaper, waking costs the "
                   "profile's wake_s and wake_j: a Pi reboots (20 s), a Jetson Nano resumes "
                   "(0.5 s)"),
    Condition("sleep, free wake", parse_scenario("power=sleep"), _free_wake,
              what="HYPOTHETICAL: as sleep, but waking costs nothing"),
    Condition("stream + free-wake sleep", parse_scenario("workload=stream,power=sleep"),
              _free_wake, what="HYPOTHETICAL: a stream whose idle devices sleep for free"),
    Condition("full-duplex", parse_scenario("network=full-duplex"),
              what="an interface sends and receives at once (Gigabit Ethernet is full-duplex)"),
    Condition("Wi-Fi", parse_scenario("network=shared,relay=ap"), _wifi,
              what="the device's Wi-Fi profile, one shared channel, every transfer through "
                   "the access point"),
    Condition("per-kind", parse_scenario("compute=per-kind"),
              what="the profile's per-layer-kind MAC rates (rpi4 has a table; "
                   "jetson-nano-10w has none, so it is unchanged)"),
)


def condition_cluster(condition: Condition, device: DeviceProfile, n: int) -> Cluster | None:
    """``n`` devices as the condition sees them (None: no such device, e.g. no Wi-Fi)."""
    profile = condition.device(device)
    return None if profile is None else Cluster.homogeneous(profile, n)


@dataclasses.dataclass(frozen=True)
class Ranking:
    """The strategies of one model on one cluster under one condition, best first."""

    estimates: tuple[EnergyEstimate, ...]

    @property
    def winner(self) -> EnergyEstimate:
        """The estimate with the lowest maximum per-device energy."""
        return self.estimates[0]

    @property
    def margin(self) -> float:
        """Runner-up over winner, minus one."""
        return self.estimates[1].max_device_j / self.estimates[0].max_device_j - 1


def ranking(matrix: Matrix, model: str, cluster: Cluster, scenario: Scenario) -> Ranking:
    """The four strategies ranked by maximum per-device energy."""
    estimates = [matrix.estimate(model, s, cluster, scenario=scenario) for s in STRATEGIES]
    return Ranking(tuple(sorted(estimates, key=lambda e: (e.max_device_j, e.strategy))))


def all_rankings(matrix: Matrix) -> dict[tuple[str, str, int, str], Ranking]:
    """Every model x device x count x condition that has a cluster."""
    out = {}
    for model in FINDING_MODELS:
        for name in FINDING_DEVICES:
            device = load_device(name)
            for n in DEVICE_COUNTS:
                for condition in CONDITIONS:
                    cluster = condition_cluster(condition, device, n)
                    if cluster is not None:
                        out[(model, name, n, condition.label)] = ranking(
                            matrix, model, cluster, condition.scenario)
    return out


def findings_table(rankings: dict[tuple[str, str, int, str], Ranking]) -> str:
    """Winner (and its margin over the runner-up) per model x cluster x condition; **bold**
    where the winner differs from one image's."""
    rows = []
    for model in FINDING_MODELS:
        for name in FINDING_DEVICES:
            for n in DEVICE_COUNTS:
                base = rankings[(model, name, n, CONDITIONS[0].label)].winner.strategy
                cells = []
                for condition in CONDITIONS:
                    r = rankings.get((model, name, n, condition.label))
                    if r is None:
                        cells.append("-")
                        continue
                    cell = f"{r.winner.strategy} (+{100 * r.margin:.0f}%)"
                    cells.append(f"**{cell}**" if r.winner.strategy != base else cell)
                rows.append([model, f"{n}x{name}", *cells])
    return markdown(["model", "cluster", *(c.label for c in CONDITIONS)], rows)


def _deciding(condition: Condition, r: Ranking, base: Ranking) -> str:
    """Which condition decides a changed winner, with the figures that show it."""
    w, old = r.winner, next(e for e in r.estimates if e.strategy == base.winner.strategy)
    if condition.scenario.workload == "stream":
        return (f"per image, {w.strategy} pays static power for its period {w.period_s:.3f} s "
                f"(set by {w.bottleneck}) where one image takes {w.makespan_s:.3f} s; "
                f"{old.strategy}'s period is {old.period_s:.3f} s ({old.bottleneck})")
    if condition.scenario.power == "sleep":
        def awake(e: EnergyEstimate) -> str:
            share = sum(d.awake_s or 0.0 for d in e.devices) / (len(e.devices) * e.period_s)
            return f"awake {100 * share:.0f}% of its {e.period_s:.3f} s"
        return (f"{w.strategy}'s devices sleep between their turns (the average device is "
                f"{awake(w)}), {old.strategy}'s devices work in parallel (the average device "
                f"is {awake(old)})")
    if condition.scenario.network == "shared":
        return (f"every transfer shares one channel through the access point: "
                f"{old.strategy} sends {old.comm_bytes / 1e6:.1f} MB and takes "
                f"{old.makespan_s:.2f} s, {w.strategy} sends {w.comm_bytes / 1e6:.1f} MB in "
                f"{w.makespan_s:.2f} s")
    if condition.scenario.network == "full-duplex":
        return (f"sending while receiving shortens {w.strategy}'s makespan to "
                f"{w.makespan_s:.3f} s (against {old.makespan_s:.3f} s for {old.strategy})")
    return (f"{w.strategy}'s layers run at their kind's rate: makespan {w.makespan_s:.3f} s "
            f"against {old.makespan_s:.3f} s for {old.strategy}")


def findings_text(rankings: dict[tuple[str, str, int, str], Ranking]) -> str:
    """One paragraph per condition: what it changes, and which condition decides it."""
    paragraphs = []
    for condition in CONDITIONS[1:]:
        changed, total = [], 0
        for (model, name, n, label), r in rankings.items():
            if label != condition.label:
                continue
            total += 1
            base = rankings[(model, name, n, CONDITIONS[0].label)]
            if r.winner.strategy != base.winner.strategy:
                changed.append((model, name, n, r, base))
        head = f"**{condition.label}** ({condition.what}): "
        if not changed:
            paragraphs.append(head + f"the winner is the same as for one image in all {total} "
                              "cases.")
            continue
        lines = [head + f"the winner changes in {len(changed)} of {total} cases."]
        for model, name, n, r, base in changed:
            old = next(e for e in r.estimates if e.strategy == base.winner.strategy)
            lines.append(f"- {model} on {n}x{name}: {r.winner.strategy} "
                         f"{r.winner.max_device_j:.3f} J against {old.strategy} "
                         f"{old.max_device_j:.3f} J; {_deciding(condition, r, base)}.")
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


FUSE_DEPTHS = (1, 2, 3, 4)


def fuse_table(matrix: Matrix) -> str:
    """Spatial's maximum per-device energy for each fuse depth on 4 rpi4, on Gigabit Ethernet
    (one image) and on Wi-Fi (shared medium through the access point); bold: the best depth."""
    wired = Cluster.homogeneous(load_device(DEVICE), ROBUSTNESS_DEVICES)
    wifi = Cluster.homogeneous(load_device(f"{DEVICE}-wifi"), ROBUSTNESS_DEVICES)
    shared = parse_scenario("network=shared,relay=ap")
    rows = []
    for model in FINDING_MODELS:
        graph = matrix.graph(model)
        plans = {f: get_strategy("spatial", fuse=f).plan(graph, wired) for f in FUSE_DEPTHS}
        for label, cluster, scenario in (("Gigabit Ethernet", wired, None),
                                         ("Wi-Fi, shared medium", wifi, shared)):
            values = [estimate_energy(plans[f], cluster, scenario=scenario).max_device_j
                      for f in FUSE_DEPTHS]
            cells = bold_min([f"{v:.3f}" for v in values], [round(v, 3) for v in values])
            rows.append([model, f"{ROBUSTNESS_DEVICES}x{cluster[0].name}", label, *cells])
    return markdown(["model", "cluster", "network", *(f"fuse={f} max J" for f in FUSE_DEPTHS)],
                    rows)


def robustness_rows(matrix: Matrix) -> list[tuple[str, str, Robustness]]:
    """The default scenario's rankings on 4 devices, with their robustness."""
    out = []
    for model in FINDING_MODELS:
        for name in FINDING_DEVICES:
            cluster = Cluster.homogeneous(load_device(name), ROBUSTNESS_DEVICES)
            plans = {s: matrix.plan(model, s, ROBUSTNESS_DEVICES) for s in STRATEGIES}
            r = robustness(plans, cluster, samples=ROBUSTNESS_SAMPLES, seed=ROBUSTNESS_SEED)
            out.append((model, cluster.signature, r))
    return out


def robustness_table(rows: list[tuple[str, str, Robustness]]) -> str:
    """Winner, margin, nearest single-field flip, the macs_per_s flip, shares of wins."""
    table = []
    for model, cluster, r in rows:
        nearest = r.nearest_flip
        macs = next(f for f in r.flips if f.field.endswith(".macs_per_s"))
        shares = ", ".join(f"{s} {100 * v:.0f}%" for s, v in
                           sorted(r.shares.items(), key=lambda kv: -kv[1]) if v > 0)
        table.append([model, cluster, r.winner, f"{100 * (r.margin or 0):.1f}%",
                      nearest.describe() if nearest else "none in x1/16..x16",
                      macs.describe().partition(" ")[2] or "none",
                      shares])
    return markdown(["model", "cluster", "winner", "margin", "nearest single-field flip",
                     "macs_per_s flip", f"wins ({ROBUSTNESS_SAMPLES} joint draws x0.5..x2)"],
                    table)


def profiles_used() -> str:
    """Each profile the tables use, with the start of its sha256."""
    names = (DEVICE, *FINDING_DEVICES, *(f"{d}-wifi" for d in FINDING_DEVICES))
    found = []
    for name in dict.fromkeys(names):
        try:
            p = load_device(name)
        except ProfileError:  # not every device has a Wi-Fi twin
            continue
        found.append(f"`{p.name}` (sha256 `{p.sha256[:12]}`)")
    return ", ".join(found)


# ---- the document -------------------------------------------------------------------------

def replace_section(text: str, name: str, body: str) -> str:
    """Replace what lies between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``."""
    begin, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"{DOC}: expected exactly one '{begin}' ... '{end}' pair")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate (or ``--check``) the tables and print the matrix timing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the document's tables are out of date")
    args = parser.parse_args(argv)

    rpi4 = load_device(DEVICE)
    matrix = Matrix(rpi4)
    _, matrix_s = timed(lambda: full_matrix(matrix, rpi4))
    t = matrix.timings
    print(f"full matrix: {len(list_models())} zoo models x {len(STRATEGIES)} strategies x "
          f"{DEVICE_COUNTS} devices = {t.plans} plans estimated in {matrix_s:.2f} s "
          f"(build models {t.build_model_s:.2f} s, trace graphs {t.build_graph_s:.2f} s, "
          f"plan {t.plan_s:.2f} s, estimate {t.estimate_s:.2f} s)")
    slow = ", ".join(f"{what} {s:.2f} s" for s, what in sorted(t.slowest, reverse=True)[:3])
    print(f"slowest plans: {slow}")

    rankings, rankings_s = timed(lambda: all_rankings(matrix))
    robust, robust_s = timed(lambda: robustness_rows(matrix))
    print(f"scenario findings: {len(rankings)} rankings in {rankings_s:.2f} s; robustness of "
          f"{len(robust)} rankings ({ROBUSTNESS_SAMPLES} joint draws each) in {robust_s:.2f} s")
    board, ops = get_energy_model("board"), get_energy_model("ops")
    sections = {
        "provenance": (f"Generated by `python docs/energy_tables.py` from plans alone: device "
                       f"profiles {profiles_used()}, energy models "
                       f"`{board.name}` v{board.version} and `{ops.name}` v{ops.version}."),
        "main": main_table(matrix, rpi4),
        "links": link_table(matrix, rpi4),
        "ops": ops_table(matrix, rpi4),
        "excess": excess_table(matrix, rpi4),
        "scenarios": findings_table(rankings),
        "findings": findings_text(rankings),
        "robustness": robustness_table(robust),
        "fuse": fuse_table(matrix),
    }
    text = DOC.read_text(encoding="utf-8")
    new = text
    for name, body in sections.items():
        new = replace_section(new, name, body)
    if args.check:
        if new != text:
            print(f"{DOC} is out of date: run python docs/energy_tables.py")
            return 1
        print(f"{DOC} is up to date")
        return 0
    if new != text:
        write_atomic(DOC, new)
        print(f"wrote {DOC}")
    else:
        print(f"{DOC} unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
