"""Device profiles: the shipped ones load and cite sources; bad ones get one clear message."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.profiles import (
    PLAUSIBLE_RANGES,
    PROFILE_FIELDS,
    DeviceProfile,
    list_devices,
    load_device,
    shipped_profiles_dir,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (
    "esp32-s3",
    "jetson-nano-10w",
    "jetson-nano-5w",
    "jetson-tx2",
    "jetson-xavier-nx",
    "rpi3bplus",
    "rpi3bplus-wifi",
    "rpi4",
    "rpi4-wifi",
)
NUMERIC_FIELDS = tuple(f for f in PROFILE_FIELDS if f not in ("name", "description", "network"))
# Fields that must be strictly positive: rates, powers and sizes.
POSITIVE_FIELDS = (
    "idle_w",
    "active_w",
    "macs_per_s",
    "mem_bytes_per_s",
    "memory_bytes",
    "net_bytes_per_s",
)

VALID: dict[str, Any] = {
    "name": "board",
    "description": "a test board",
    "network": "Gigabit Ethernet",
    "idle_w": 2.0,
    "active_w": 5.0,
    "macs_per_s": 1.0e9,
    "mem_bytes_per_s": 2.0e9,
    "memory_bytes": 1024,
    "net_bytes_per_s": 1.0e8,
    "net_latency_s": 1.0e-4,
    "tx_j_per_byte": 5.0e-9,
    "rx_j_per_byte": 5.0e-9,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _render(values: Mapping[str, Any]) -> str:
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())


def _write(folder: Path, text: str, stem: str = "board") -> Path:
    path = folder / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error_for(folder: Path, text: str, stem: str = "board") -> str:
    path = _write(folder, text, stem)
    with pytest.raises(ProfileError) as info:
        load_device(path)
    message = str(info.value)
    assert path.name in message, message
    return message


# --- shipped profiles --------------------------------------------------------------


def test_the_documented_devices_are_shipped() -> None:
    assert list_devices() == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_device(name)
    assert profile.name == name
    assert profile.active_w >= profile.idle_w > 0
    assert Path(profile.path).name == f"{name}.toml"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_number_in_every_shipped_profile_has_a_source_comment(name: str) -> None:
    lines = (REPO / "devices" / f"{name}.toml").read_text(encoding="utf-8").splitlines()
    seen = set()
    for number, line in enumerate(lines):
        match = re.match(r"\s*([A-Za-z_]+)\s*=\s*([^#]*)(#.*)?$", line)
        if not match or match.group(1) not in NUMERIC_FIELDS:
            continue
        key = match.group(1)
        seen.add(key)
        block = []  # the comment lines right above this one
        for above in reversed(lines[:number]):
            if not above.lstrip().startswith("#"):
                break
            block.append(above.lstrip("# ").strip())
        comment = " ".join([*block, (match.group(3) or "").lstrip("# ")]).strip()
        assert len(comment) >= 20, f"{name}.toml line {number + 1}: {key} has no source comment"
    assert seen == set(NUMERIC_FIELDS)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_estimate_in_a_shipped_profile_is_marked_as_one(name: str) -> None:
    # A comment that speaks of assuming or guessing must say ESTIMATE, so a reader
    # scanning for measured figures is not misled.
    text = (REPO / "devices" / f"{name}.toml").read_text(encoding="utf-8")
    for block in re.split(r"\n\s*\n", text):
        if re.search(r"\b(assumed|guess|not sourced)\b", block, re.IGNORECASE):
            assert "ESTIMATE" in block, block


def test_the_shipped_profiles_are_the_repository_devices_folder() -> None:
    # From a source checkout this is devices/ itself; from an installed wheel, its copy.
    shipped = shipped_profiles_dir()
    on_disk = sorted((REPO / "devices").glob("*.toml"))
    assert sorted(e.name for e in shipped.iterdir() if e.name.endswith(".toml")) == [
        p.name for p in on_disk
    ]
    for path in on_disk:
        assert shipped.joinpath(path.name).read_bytes() == path.read_bytes()


def test_every_subpackage_is_listed_for_the_wheel_and_the_profiles_ship_in_it() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "pytest_edgeenergy").rglob("__init__.py")
    }
    on_disk.add("pytest_edgeenergy")
    unlisted = on_disk - {"pytest_edgeenergy.devices"} - set(setuptools["packages"])
    assert not unlisted, f"add {sorted(unlisted)} to [tool.setuptools] packages in pyproject.toml"
    assert "pytest_edgeenergy.devices" in setuptools["packages"]
    assert setuptools["package-dir"]["pytest_edgeenergy.devices"] == "devices"
    assert "*.toml" in setuptools["package-data"]["pytest_edgeenergy.devices"]


# --- loading ---------------------------------------------------------------------------


def test_a_valid_profile_loads_with_its_path_and_hash(tmp_path: Path) -> None:
    path = _write(tmp_path, _render(VALID))
    profile = load_device(str(path))
    assert profile.to_dict() == {
        **VALID,
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert isinstance(profile.memory_bytes, int)
    assert isinstance(profile.idle_w, float)


def test_a_path_object_is_always_read_as_a_path(tmp_path: Path) -> None:
    path = tmp_path / "board"
    path.write_text(_render(VALID), encoding="utf-8")
    # Read as a file though it has no .toml suffix: as a name, "board" is unknown.
    assert load_device(path).name == "board"
    with pytest.raises(ProfileError, match="unknown device 'board'"):
        load_device("board")


def test_a_name_is_looked_up_in_the_search_dirs_before_the_shipped_profiles(
    tmp_path: Path,
) -> None:
    _write(tmp_path, _render({**VALID, "name": "rpi4", "idle_w": 3.0}), stem="rpi4")
    assert load_device("rpi4", [tmp_path]).idle_w == 3.0
    assert load_device("rpi4").idle_w == 2.7


def test_devices_in_search_dirs_are_listed_with_the_shipped_ones(tmp_path: Path) -> None:
    _write(tmp_path, _render(VALID))
    assert list_devices([tmp_path]) == sorted([*SHIPPED, "board"])


def test_profiles_with_equal_contents_are_equal_wherever_they_live(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = load_device(_write(tmp_path / "a", _render(VALID)))
    second = load_device(_write(tmp_path / "b", _render(VALID)))
    assert first == second and hash(first) == hash(second) and first.path != second.path
    third = load_device(_write(tmp_path / "b", _render({**VALID, "idle_w": 2.5})))
    assert third != first


@settings(max_examples=25, deadline=None)
@given(
    numbers=st.fixed_dictionaries(
        {
            key: st.floats(max(PLAUSIBLE_RANGES[key][0], 1e-300),
                           PLAUSIBLE_RANGES[key][1] - (100 if key == "idle_w" else 0),
                           allow_nan=False, allow_infinity=False)
            for key in NUMERIC_FIELDS
            if key not in ("active_w", "memory_bytes")
        }
    ),
    extra_w=st.floats(0, 100, allow_nan=False),
    memory_bytes=st.integers(1000, 10**15),
)
def test_any_in_range_profile_loads_back_the_numbers_it_was_written_with(
    numbers: dict[str, float], extra_w: float, memory_bytes: int
) -> None:
    values = {
        **VALID,
        **numbers,
        "active_w": numbers["idle_w"] + extra_w,
        "memory_bytes": memory_bytes,
    }
    with tempfile.TemporaryDirectory() as folder:
        profile = load_device(_write(Path(folder), _render(values)))
    assert {key: getattr(profile, key) for key in PROFILE_FIELDS} == values


# --- bad profiles: one message naming the file, the field and what was expected ----------


def test_invalid_toml_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    text = _render(VALID).replace("idle_w = 2.0", "idle_w = = 2.0")
    message = _error_for(tmp_path, text)
    assert "invalid TOML" in message
    assert re.search(r"line 4, column \d+", message), message


def test_a_file_that_is_not_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_bytes(b"name = \xff\xfe\n")
    with pytest.raises(ProfileError, match=r"board\.toml: not UTF-8"):
        load_device(path)


@pytest.mark.parametrize("field", PROFILE_FIELDS)
def test_a_missing_field_is_named_with_what_it_should_hold(tmp_path: Path, field: str) -> None:
    values = {key: value for key, value in VALID.items() if key != field}
    message = _error_for(tmp_path, _render(values))
    assert f"missing field '{field}'" in message
    assert "expected" in message


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render(VALID) + "idle_ww = 2.0\n")
    assert "unknown field 'idle_ww'" in message
    assert "did you mean 'idle_w'?" in message


def test_an_unknown_key_with_no_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render(VALID) + "colour = 3\n")
    assert "unknown field 'colour'" in message and "did you mean" not in message
    assert "idle_w" in message


def test_a_misspelt_key_is_reported_as_unknown_rather_than_as_missing(tmp_path: Path) -> None:
    values = {("idel_w" if key == "idle_w" else key): value for key, value in VALID.items()}
    message = _error_for(tmp_path, _render(values))
    assert "unknown field 'idel_w'; did you mean 'idle_w'?" in message


def test_a_table_in_a_profile_is_reported_as_an_unknown_key(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render(VALID) + "[power]\nidle_w = 2.0\n")
    assert "unknown field 'power'" in message


@pytest.mark.parametrize(
    ("field", "value", "got"),
    [
        ("idle_w", "2.7", "'2.7' (string)"),
        ("macs_per_s", True, "True (boolean)"),
        ("net_latency_s", [1.0], "[1.0] (array)"),
        ("name", 3, "3 (integer)"),
        ("description", "  ", "'  ' (string)"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_the_expected_type(
    tmp_path: Path, field: str, value: Any, got: str
) -> None:
    message = _error_for(tmp_path, _render({**VALID, field: value}))
    assert f"field '{field}' must be " in message
    assert got in message


def test_a_boolean_is_not_accepted_as_a_number_of_bytes(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render({**VALID, "memory_bytes": True}))
    assert "field 'memory_bytes' must be an integer number of bytes" in message


def test_a_memory_size_written_as_a_float_asks_for_an_integer(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render({**VALID, "memory_bytes": 4.0e9}))
    assert "field 'memory_bytes' must be an integer number of bytes" in message
    assert "without a decimal point or exponent" in message


@pytest.mark.parametrize("field", POSITIVE_FIELDS)
@pytest.mark.parametrize("value", [0, -1])
def test_a_zero_or_negative_rate_power_or_size_is_refused(
    tmp_path: Path, field: str, value: int
) -> None:
    bad = value if field == "memory_bytes" else float(value)
    values = {**VALID, field: bad}
    if field == "idle_w":
        values["active_w"] = 5.0
    message = _error_for(tmp_path, _render(values))
    assert f"field '{field}' must be" in message
    assert "greater than 0" in message or "at least idle_w" in message


@pytest.mark.parametrize("field", ["net_latency_s", "tx_j_per_byte", "rx_j_per_byte"])
def test_a_negative_latency_or_energy_is_refused_but_zero_is_allowed(
    tmp_path: Path, field: str
) -> None:
    assert getattr(load_device(_write(tmp_path, _render({**VALID, field: 0.0}))), field) == 0
    message = _error_for(tmp_path, _render({**VALID, field: -1.0e-9}))
    assert f"field '{field}' must be" in message and "0 or more" in message


def test_active_power_below_idle_power_is_refused(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render({**VALID, "idle_w": 3.0, "active_w": 2.0}))
    assert "field 'active_w' must be at least idle_w (3.0 W), got 2.0 W" in message


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_is_refused(tmp_path: Path, value: float) -> None:
    message = _error_for(tmp_path, _render({**VALID, "mem_bytes_per_s": value}))
    assert "field 'mem_bytes_per_s' must be a finite number" in message


def test_a_name_that_differs_from_the_file_name_is_refused(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render({**VALID, "name": "other"}))
    assert "field 'name' must equal the file name without .toml ('board')" in message


def test_a_name_that_cannot_appear_in_a_cluster_spec_is_refused(tmp_path: Path) -> None:
    message = _error_for(tmp_path, _render({**VALID, "name": "4xpi"}), stem="4xpi")
    assert "field 'name' must start with a letter" in message


def test_an_unknown_device_lists_the_known_ones_and_the_folders_searched(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ProfileError) as info:
        load_device("rpi5", [tmp_path, missing])
    message = str(info.value)
    assert "unknown device 'rpi5'; did you mean 'rpi4'?" in message
    assert "Known devices: " + ", ".join(sorted(SHIPPED)) in message
    assert str(tmp_path) in message and f"{missing} (missing)" in message
    assert str(shipped_profiles_dir()) in message


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"device profile not found: .*nope\.toml"):
        load_device(str(tmp_path / "nope.toml"))


def test_a_broken_profile_in_a_search_dir_is_reported_when_looked_up_by_name(
    tmp_path: Path,
) -> None:
    _write(tmp_path, _render({**VALID, "name": "rpi4"}).replace('"', ""), stem="rpi4")
    with pytest.raises(ProfileError, match=r"rpi4\.toml: invalid TOML"):
        load_device("rpi4", [tmp_path])


def test_a_profile_is_a_frozen_value() -> None:
    profile = load_device("rpi4")
    with pytest.raises(AttributeError):
        profile.idle_w = 1.0  # type: ignore[misc]
    assert isinstance(profile, DeviceProfile)
    assert json.loads(json.dumps(profile.to_dict()))["name"] == "rpi4"
