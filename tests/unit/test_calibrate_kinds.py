"""Per-kind calibration: the table is measured, written with how, and loads into a profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_cases import FAKE, FILLED_IN

from pytest_edgeenergy import calibrate, calibrate_kinds
from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.calibrate_kinds import KIND_LAYERS, Layer
from pytest_edgeenergy.profiles import load_device

RATES = {"conv": 1.5e10, "pointwise": 1.0e10, "depthwise": 3.0e9, "linear": 1.0e9}


def test_per_kind_calibration_writes_a_table_that_loads_once_the_profile_is_filled_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(calibrate, "measure", lambda seconds, command: FAKE)
    monkeypatch.setattr(calibrate_kinds, "measure_kind_rates", lambda seconds: RATES)
    out = tmp_path / "host.toml"
    assert main(["calibrate", "--out", str(out), "--per-kind", "--seconds", "1"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "# depthwise: 144->144 3x3/144 @56x56" in text
    assert "measured per kind: conv = 1.500e+10" in capsys.readouterr().out
    out.write_text(text + FILLED_IN, encoding="utf-8")  # lines added after it stay top-level
    assert load_device(out).kind_rates() == RATES


def test_the_timed_layers_count_their_macs_by_hand() -> None:
    assert Layer(144, 144, 56, 3, 144).macs == 144 * 56 * 56 * 9  # depthwise: fan-in 1 x 3 x 3
    assert Layer(24, 144, 56).macs == 144 * 56 * 56 * 24  # pointwise
    assert Layer(1280, 1000).macs == 1_280_000  # linear
    assert set(KIND_LAYERS) == {"conv", "pointwise", "depthwise", "linear"}


def test_the_measured_kind_rates_are_positive_and_finite() -> None:
    tiny = {"depthwise": (Layer(8, 8, 8, 3, 8),), "linear": (Layer(16, 16),)}
    rates = calibrate_kinds.measure_kind_rates(0.05, tiny)
    assert set(rates) == {"depthwise", "linear"}
    assert all(0 < r < float("inf") for r in rates.values())
