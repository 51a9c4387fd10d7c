"""Optional profile figures: power states, per-message energy and the per-kind table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.profiles import load_device

BASE = """
name = "dev"
description = "a device"
network = "Wi-Fi"
idle_w = 2.0
active_w = 6.0
macs_per_s = 1.0e10
mem_bytes_per_s = 5.0e9
memory_bytes = 1073741824
net_bytes_per_s = 1.0e7
net_latency_s = 1.0e-3
tx_j_per_byte = 5.0e-8
rx_j_per_byte = 5.0e-8
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "dev.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def test_optional_figures_load_and_are_absent_by_default(tmp_path: Path) -> None:
    plain = load_device(write(tmp_path, ""))
    assert (plain.sleep_w, plain.wake_s, plain.macs_per_s_by_kind) == (None, None, ())
    assert "sleep_w" not in plain.to_dict() and "macs_per_s_by_kind" not in plain.to_dict()
    full = load_device(write(tmp_path, """
sleep_w = 0.5
wake_s = 0.2
wake_j = 1
tx_j_per_message = 1e-4
rx_j_per_message = 2e-4
[macs_per_s_by_kind]
depthwise = 2e9
conv = 1.5e10
"""))
    assert (full.sleep_w, full.wake_s, full.wake_j) == (0.5, 0.2, 1.0)
    assert (full.tx_j_per_message, full.rx_j_per_message) == (1e-4, 2e-4)
    assert full.kind_rates() == {"conv": 1.5e10, "depthwise": 2e9}
    assert full.to_dict()["macs_per_s_by_kind"] == {"conv": 1.5e10, "depthwise": 2e9}


@pytest.mark.parametrize(("extra", "message"), [
    ("sleep_w = 3.0", r"field 'sleep_w' must be at most idle_w \(2.0 W\), got 3.0 W"),
    ("wake_s = -1", r"field 'wake_s' must be a time in seconds, 0 or more, got -1"),
    ("wake_j = true", r"field 'wake_j' must be an energy in joules, 0 or more"),
    ("sleep_watts = 1", r"unknown field 'sleep_watts'; did you mean 'sleep_w'\?"),
    ("macs_per_s_by_kind = 5", r"field 'macs_per_s_by_kind' must be a table"),
    ("[macs_per_s_by_kind]\ndepthwize = 1e9", r"unknown layer kind 'depthwize' in "
                                               r"\[macs_per_s_by_kind\]; did you mean "
                                               r"'depthwise'\?"),
    ("[macs_per_s_by_kind]\nconv = 0", r"field 'macs_per_s_by_kind.conv' must be a rate"),
])
def test_a_bad_optional_figure_is_refused_naming_the_file_and_field(
        tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_device(write(tmp_path, extra))


@pytest.mark.parametrize("name", ["rpi4-wifi", "rpi3bplus-wifi"])
def test_the_shipped_wifi_profiles_describe_a_wifi_link_with_per_message_energy(
        name: str) -> None:
    profile = load_device(name)
    assert "802.11" in profile.network
    assert profile.tx_j_per_message is not None and profile.rx_j_per_message is not None
    wired = load_device(name.removesuffix("-wifi"))
    assert profile.net_bytes_per_s < wired.net_bytes_per_s
