"""Pictures: valid SVG/PNG, one bar group per strategy, the legend's terms, sweeps, trends."""

from __future__ import annotations

import dataclasses
import struct
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib", reason="the plot extra is not installed")

from pytest_edgeenergy.plots import (
    PlotUnavailableError,
    groups_from_report,
    markdown_section,
    require_matplotlib,
    sweeps,
    trends_from_runs,
    write_history_plot,
    write_report_plots,
)

SVG = "{http://www.w3.org/2000/svg}"
STRATEGIES = ("input-channel", "layer", "output-channel", "spatial")


def device(index: int, compute: float, comm: float, static: float) -> dict[str, Any]:
    return {"index": index, "profile": "rpi4", "compute_j": compute, "comm_j": comm,
            "static_j": static, "total_j": compute + comm + static}


def case(model: str, strategy: str, n: int, scale: float) -> dict[str, Any]:
    key = f"{model}|{strategy}|{n}xrpi4|1x3x32x32|board"
    devices = [device(d, scale * (d + 1), 0.1 * scale, 0.5) for d in range(n)]
    return {"key": key, "strategy": strategy, "energy": {"devices": devices}}


def report(counts: tuple[int, ...] = (2, 4), robustness: bool = False) -> dict[str, Any]:
    cases, groups = [], []
    for n in counts:
        rows = []
        for rank, strategy in enumerate(STRATEGIES, start=1):
            c = case("tinycnn", strategy, n, scale=rank / n)
            cases.append(c)
            rows.append({"strategy": strategy, "rank": rank, "key": c["key"], "status": "passed"})
        group: dict[str, Any] = {"model": "tinycnn", "cluster": f"{n}xrpi4",
                                 "input_shape": [1, 3, 32, 32], "energy_model": "board",
                                 "rows": rows}
        if robustness:  # the shape of pytest_edgeenergy.robustness.Robustness.to_dict()
            group["robustness"] = {
                "headline": "input-channel wins by 12.0%; stays the winner unless macs_per_s "
                            "x0.5 (-> layer)",
                "flips": [{"field": "rpi4.macs_per_s", "factor": 0.5, "new_winner": "layer",
                           "exact": True},
                          {"field": "rpi4.idle_w", "factor": 3.2, "new_winner": "spatial",
                           "exact": False},
                          {"field": "rpi4.net_latency_s", "factor": None, "new_winner": None,
                           "exact": True},
                          {"unexpected": "shape"}]}
        groups.append(group)
    return {"format": "pytest-edgeenergy-report/1", "groups": groups, "cases": cases}


def svg_ids(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return [el.get("id", "") for el in root.iter()]


def svg_texts(path: Path) -> list[str]:
    return [el.text or "" for el in ET.parse(path).getroot().iter(f"{SVG}text")]


def bar_ids(path: Path) -> list[tuple[str, str, str]]:
    out = []
    for ident in svg_ids(path):
        if ident.startswith("bar__"):
            _, strategy, term, dev = ident.split("__")
            out.append((strategy, term, dev))
    return out


def test_a_folder_gets_one_svg_per_model_and_cluster_with_a_bar_group_per_strategy(
        tmp_path: Path) -> None:
    written = write_report_plots(report(), tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == ["sweep__tinycnn__rpi4__1x3x32x32__board.svg",
                     "tinycnn__2xrpi4__1x3x32x32__board.svg",
                     "tinycnn__4xrpi4__1x3x32x32__board.svg"]
    bars = bar_ids(tmp_path / "plots" / "tinycnn__4xrpi4__1x3x32x32__board.svg")
    per_strategy = Counter(strategy for strategy, _, _ in bars)
    assert per_strategy == {s: 4 * 3 for s in STRATEGIES}  # 4 devices x 3 terms each
    assert {term for _, term, _ in bars} == {"compute", "communication", "static"}
    texts = svg_texts(tmp_path / "plots" / "tinycnn__4xrpi4__1x3x32x32__board.svg")
    for term in ("compute", "communication", "static"):
        assert term in texts  # the legend
    for rank, strategy in enumerate(STRATEGIES, start=1):  # each bar group's label
        assert texts[texts.index(strategy) + 1] == f"(rank {rank})"


def test_one_svg_file_holds_every_group_and_the_device_count_sweep(tmp_path: Path) -> None:
    target = tmp_path / "all.svg"
    assert write_report_plots(report(), target) == [target]
    bars = bar_ids(target)
    assert Counter(dev for _, _, dev in bars if dev in "23") == {"2": 4 * 3, "3": 4 * 3}
    ids = svg_ids(target)
    for strategy in STRATEGIES:
        assert f"sweep__max_device_j__{strategy}" in ids
        assert f"sweep__total_j__{strategy}" in ids
    assert "robustness__rpi4.idle_w" not in ids  # no robustness in this report


def test_a_png_is_a_valid_png(tmp_path: Path) -> None:
    target = tmp_path / "all.png"
    write_report_plots(report(counts=(4,)), target)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 800 < width < 1000 and 300 < height < 450  # one panel, about 9 x 3.6 in at 100 dpi


def test_robustness_is_drawn_when_the_report_carries_it(tmp_path: Path) -> None:
    target = tmp_path / "r.svg"
    write_report_plots(report(counts=(4,), robustness=True), target)
    ids = svg_ids(target)
    assert "robustness__rpi4.idle_w" in ids and "robustness__rpi4.macs_per_s" in ids
    assert "robustness__rpi4.net_latency_s" not in ids  # no flip: a note, no bar
    texts = svg_texts(target)
    assert "x0.5 -> layer" in texts and "x3.2 -> spatial" in texts
    assert "no flip in range" in texts
    groups = groups_from_report(report(counts=(4,), robustness=True))
    assert [(r.label, r.factor) for r in groups[0].robustness] == [
        ("rpi4.macs_per_s", 0.5), ("rpi4.idle_w", 3.2), ("rpi4.net_latency_s", None)]
    assert groups[0].robustness_headline.startswith("input-channel wins by 12.0%")


def test_no_sweep_without_two_device_counts_and_nothing_for_an_empty_report(
        tmp_path: Path) -> None:
    assert sweeps(groups_from_report(report(counts=(4,)))) == []
    assert write_report_plots({"groups": [], "cases": []}, tmp_path / "x.svg") == []
    assert not (tmp_path / "x.svg").exists()


def test_the_same_report_gives_the_same_svg(tmp_path: Path) -> None:
    write_report_plots(report(), tmp_path / "a.svg")
    write_report_plots(report(), tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


@dataclasses.dataclass
class _Git:
    commit: str | None
    dirty: bool | None


@dataclasses.dataclass
class _Energy:
    max_device_j: float


@dataclasses.dataclass
class _Entry:
    energy: _Energy


@dataclasses.dataclass
class _Run:
    number: int | None
    git: _Git
    entries: dict[str, _Entry]


def test_history_draws_each_case_with_the_commits_on_the_axis(tmp_path: Path) -> None:
    runs = [_Run(1, _Git("1a2b3c4d5e6f", False), {"a|layer": _Entry(_Energy(1.0)),
                                                  "b|layer": _Entry(_Energy(2.0))}),
            _Run(2, _Git("abcdef012345", True), {"a|layer": _Entry(_Energy(1.5))})]
    trends = trends_from_runs(runs, "max_device_j")
    assert [(t.case, t.points) for t in trends] == [
        ("a|layer", (("0001", "1a2b3c4", 1.0), ("0002", "abcdef0+", 1.5))),
        ("b|layer", (("0001", "1a2b3c4", 2.0),))]
    target = tmp_path / "history.svg"
    write_history_plot(trends, "J", target)
    ids = svg_ids(target)
    assert "trend__a|layer" in ids and "trend__b|layer" in ids
    texts = svg_texts(target)
    assert texts.count("1a2b3c4") == 2 and texts.count("abcdef0+") == 1  # commits on the axis
    folder = write_history_plot(trends, "J", tmp_path / "h")
    assert sorted(p.name for p in folder) == ["a_layer.svg", "b_layer.svg"]


def test_markdown_embeds_the_pictures_relative_to_the_report(tmp_path: Path) -> None:
    pictures = [tmp_path / "plots" / "a.svg", tmp_path / "plots" / "b.svg"]
    text = markdown_section(pictures, relative_to=tmp_path)
    assert text == "## Pictures\n\n![a](plots/a.svg)\n\n![b](plots/b.svg)\n"
    assert markdown_section([]) == ""


def test_without_matplotlib_pictures_are_refused_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it raises ImportError
    with pytest.raises(PlotUnavailableError, match=r"pip install 'pytest-edgeenergy\[plot\]'"):
        require_matplotlib()
