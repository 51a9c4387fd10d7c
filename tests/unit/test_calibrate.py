"""Host calibration: measured fields are written with how they were measured, atomically."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from calibration_cases import FAKE, FILLED_IN

from pytest_edgeenergy import calibrate
from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.atomic import write_atomic
from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.profiles import load_device


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the timing: most tests here are about the file, not the numbers."""
    monkeypatch.setattr(calibrate, "measure", lambda seconds, command: FAKE)


def test_calibrate_writes_a_profile_with_measured_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    out = tmp_path / "bench.toml"
    assert main(["calibrate", "--out", str(out), "--seconds", "0.2"]) == 0
    text = out.read_text(encoding="utf-8")
    values = tomllib.loads(text)
    assert values["name"] == "bench"
    assert values["macs_per_s"] > 0 and values["mem_bytes_per_s"] > 0
    assert isinstance(values["memory_bytes"], int) and values["memory_bytes"] > 0
    for unmeasured in ("network", "idle_w", "active_w", "tx_j_per_byte", "rx_j_per_byte"):
        assert unmeasured not in values
        assert f"# {unmeasured} =" in text
    flat = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert f"torch {torch.__version__} on {torch.get_num_threads()} thread" in flat
    assert f"calibrate --out {out} --seconds 0.2" in flat
    assert "FILL IN: measure with a power meter" in text
    assert "will not load until" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["bench.toml"]


def test_the_written_profile_loads_only_once_power_and_network_are_filled_in(
    tmp_path: Path, fake_measure: None
) -> None:
    out = tmp_path / "bench.toml"
    assert calibrate.run(out, seconds=1.0) == 0
    with pytest.raises(ProfileError, match=r"bench\.toml: missing field 'network'"):
        load_device(out)
    out.write_text(out.read_text(encoding="utf-8") + FILLED_IN, encoding="utf-8")
    profile = load_device(out)
    assert (profile.macs_per_s, profile.mem_bytes_per_s) == (1.234e10, 5.0e9)
    assert profile.memory_bytes == 8 * 2**30


def test_an_existing_file_is_left_untouched_when_measuring_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bench.toml"
    out.write_text("old contents\n", encoding="utf-8")

    def broken(seconds: float) -> float:
        raise RuntimeError("no torch backend")

    monkeypatch.setattr(calibrate, "measure_macs_per_s", broken)
    with pytest.raises(RuntimeError, match="no torch backend"):
        calibrate.run(out, seconds=0.1)
    assert out.read_text(encoding="utf-8") == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bench.toml"]


def test_an_existing_file_is_left_untouched_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_measure: None
) -> None:
    out = tmp_path / "bench.toml"
    out.write_text("old contents\n", encoding="utf-8")

    def full_disk(source: str, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        calibrate.run(out, seconds=0.1)
    assert out.read_text(encoding="utf-8") == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bench.toml"]


def test_replacing_a_profile_keeps_its_file_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench.toml"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o640)
    write_atomic(out, "new\n")
    assert out.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_a_new_profile_gets_the_usual_file_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.toml", "x\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.toml").stat().st_mode) == 0o644


def test_a_folder_as_out_gets_a_file_named_after_the_device(
    tmp_path: Path, fake_measure: None
) -> None:
    assert main(["calibrate", "--out", str(tmp_path), "--name", "bench-2"]) == 0
    assert tomllib.loads((tmp_path / "bench-2.toml").read_text(encoding="utf-8"))["name"] == (
        "bench-2"
    )


def test_a_name_that_differs_from_the_file_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_measure: None
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calibrate", "--out", str(tmp_path / "a.toml"), "--name", "b"])
    assert info.value.code == 2
    assert "--name 'b' differs from the output file name 'a.toml'" in capsys.readouterr().err
    assert not (tmp_path / "a.toml").exists()


def test_a_name_unfit_for_a_cluster_spec_is_refused(tmp_path: Path, fake_measure: None) -> None:
    with pytest.raises(ProfileError, match="device name '2xpi' must start with a letter"):
        calibrate.run(tmp_path, name="2xpi")


def test_an_out_path_that_is_neither_a_profile_file_nor_a_folder_is_refused(
    tmp_path: Path, fake_measure: None
) -> None:
    with pytest.raises(
        ProfileError, match=r"must be a file ending in \.toml or an existing folder"
    ):
        calibrate.run(tmp_path / "missing-folder")
    with pytest.raises(ProfileError, match="does not exist"):
        calibrate.run(tmp_path / "missing-folder" / "x.toml")


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "soon"])
def test_seconds_must_be_a_positive_number(
    tmp_path: Path, seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calibrate", "--out", str(tmp_path / "x.toml"), "--seconds", seconds])
    assert info.value.code == 2
    assert "--seconds" in capsys.readouterr().err


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_conv_macs_are_computed_from_the_layer_shapes() -> None:
    shape = calibrate.ConvShape(64, 128, 56, kernel=3)
    assert calibrate.conv_macs(shape) == 128 * 56 * 56 * 64 * 3 * 3
    assert calibrate.conv_macs(shape, batch=2) == 2 * calibrate.conv_macs(shape)
    assert str(shape) == "64->128 3x3 @56x56"


def test_the_measured_rates_are_positive_and_finite() -> None:
    layers = (calibrate.ConvShape(8, 8, 16),)
    assert 0 < calibrate.measure_macs_per_s(0.01, layers) < float("inf")
    assert 0 < calibrate.measure_mem_bytes_per_s(0.01, nbytes=2**20) < float("inf")
