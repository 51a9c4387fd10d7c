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
from pytest_edgeenergy.energy import EnergyEstimate, estimate_energy, get_energy_model  # noqa: E402
from pytest_edgeenergy.graph.build import build_graph  # noqa: E402
from pytest_edgeenergy.graph.layergraph import LayerGraph  # noqa: E402
from pytest_edgeenergy.plan import Plan  # noqa: E402
from pytest_edgeenergy.profiles import DeviceProfile, load_device  # noqa: E402
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
                 energy_model: str = "board") -> EnergyEstimate:
        """The energy estimate of a plan on ``cluster``."""
        plan = self.plan(model, strategy, len(cluster))
        estimate, estimate_s = timed(lambda: estimate_energy(plan, cluster, model=energy_model))
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

    board, ops = get_energy_model("board"), get_energy_model("ops")
    sections = {
        "provenance": (f"Generated by `python docs/energy_tables.py` from plans alone: device "
                       f"profile `{rpi4.name}` (sha256 `{rpi4.sha256[:12]}`), energy models "
                       f"`{board.name}` v{board.version} and `{ops.name}` v{ops.version}."),
        "main": main_table(matrix, rpi4),
        "links": link_table(matrix, rpi4),
        "ops": ops_table(matrix, rpi4),
        "excess": excess_table(matrix, rpi4),
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
