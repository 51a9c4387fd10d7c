"""The README's picture shows what the code computes today (its records are in its metadata)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.energy import estimate_energy
from pytest_edgeenergy.partitioned import partition
from pytest_edgeenergy.plots import groups_from_report, picture_data
from pytest_edgeenergy.records.report import build_report
from pytest_edgeenergy.records.results import PASSED, CaseEnergy, CaseResult
from pytest_edgeenergy.zoo import build_model, model_input_shape

ROOT = Path(__file__).resolve().parents[2]
PICTURE = ROOT / "docs" / "images" / "resnet18-4xrpi4.svg"
REGENERATE = ("pytest suites/test_energy_matrix.py --edge-models=resnet18 "
              "--edge-strategies=layer,spatial,output-channel,input-channel --edge-devices=4 "
              "--edge-plot=docs/images/resnet18-4xrpi4.svg")


def test_the_readme_shows_the_picture_and_how_to_regenerate_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/images/resnet18-4xrpi4.svg)" in readme
    assert REGENERATE in readme


def test_the_readme_picture_holds_todays_energy_figures() -> None:
    """Planned and estimated here (nothing is run: energy comes from plans), as the plugin
    does for the picture; a change that moves energy must regenerate the picture."""
    model = build_model("resnet18")
    shape = model_input_shape("resnet18")
    cluster = Cluster.homogeneous("rpi4", 4)
    cases = []
    for strategy in ("layer", "spatial", "output-channel", "input-channel"):
        pm = partition(model, strategy, cluster, shape)
        energy = CaseEnergy.from_estimate(estimate_energy(pm), pm.plan, cluster)
        cases.append(CaseResult(model="resnet18", strategy=strategy, strategy_params={},
                                cluster=cluster.signature, input_shape=tuple(shape),
                                energy_model="board", status=PASSED, nodeid="", energy=energy))
    # Through JSON, as the picture stores them (tuples become lists; floats survive exactly).
    expected = json.loads(json.dumps(
        [dataclasses.asdict(g) for g in groups_from_report(build_report(cases, []).to_dict())]))
    drawn = picture_data(PICTURE)
    assert drawn is not None, f"{PICTURE} carries no records: regenerate it with {REGENERATE}"
    assert drawn["groups"] == expected, (
        f"{PICTURE} is out of date: regenerate it with {REGENERATE}")
