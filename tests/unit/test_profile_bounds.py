"""Profile figures outside any device's range are refused by name (issue 9, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgeenergy import ProfileError, list_devices, load_device
from pytest_edgeenergy.profiles import (
    OPTIONAL_PROFILE_FIELDS,
    PLAUSIBLE_RANGES,
    PROFILE_FIELDS,
    shipped_profiles_dir,
)


def _profile(tmp_path: Path, field: str, value: str) -> Path:
    text = (Path(str(shipped_profiles_dir())) / "rpi4.toml").read_text(encoding="utf-8")
    lines = [f"{field} = {value}" if line.startswith(f"{field} =") else line
             for line in text.splitlines()]
    if not any(line.startswith(f"{field} =") for line in lines):  # an optional field
        lines.insert(0, f"{field} = {value}")
    lines = [line.replace('"rpi4"', '"board"') for line in lines]
    path = tmp_path / "board.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("field", "value"), [
    ("net_bytes_per_s", "5e-324"),
    ("net_bytes_per_s", "1e300"),
    ("macs_per_s", "1e-3"),
    ("mem_bytes_per_s", "0.5"),
    ("idle_w", "1e-300"),
    ("active_w", "1e9"),
    ("memory_bytes", "12"),
    ("net_latency_s", "3600.0"),
    ("tx_j_per_byte", "4.8"),
    ("rx_j_per_byte", "1e3"),
    ("wake_s", "86400.0"),
    ("tx_j_per_message", "5e9"),
])
def test_a_figure_outside_the_plausible_range_is_refused_naming_file_field_and_range(
        tmp_path: Path, field: str, value: str) -> None:
    path = _profile(tmp_path, field, value)
    with pytest.raises(ProfileError, match=rf"board.toml: field '{field}' = .* is outside the "
                                           rf"plausible range for a device, .* to .*"):
        load_device(path)


def test_every_numeric_field_has_a_plausible_range() -> None:
    numeric = [f for f in (*PROFILE_FIELDS, *OPTIONAL_PROFILE_FIELDS)
               if f not in ("name", "description", "network", "macs_per_s_by_kind")]
    assert sorted(PLAUSIBLE_RANGES) == sorted(numeric)
    assert all(low < high for low, high in PLAUSIBLE_RANGES.values())


def test_every_shipped_profile_lies_within_the_plausible_ranges() -> None:
    for name in list_devices():
        profile = load_device(name)
        for field, (low, high) in PLAUSIBLE_RANGES.items():
            value = getattr(profile, field)
            assert value is None or low <= value <= high, (name, field)


def test_a_rate_per_layer_kind_has_the_range_of_macs_per_s(tmp_path: Path) -> None:
    path = _profile(tmp_path, "macs_per_s_by_kind.conv", "5e-300")
    with pytest.raises(ProfileError, match=r"field 'macs_per_s_by_kind.conv' = 5e-300 is outside "
                                           r"the plausible range for a device, 1000 to 1e\+17"):
        load_device(path)
