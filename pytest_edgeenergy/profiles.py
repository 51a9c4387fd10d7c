"""Device profiles: load a TOML file of measured device figures and check every field.

A profile is a flat TOML file of ``key = value`` lines whose keys name their unit
(``idle_w`` in watts, ``macs_per_s`` in multiply-accumulates per second, ...). The
shipped profiles live in the repository's ``devices/`` folder, which is installed as the
package ``pytest_edgeenergy.devices``; users add their own folders with ``search_dirs``.

Every problem with a profile raises :class:`~pytest_edgeenergy.errors.ProfileError` with
one message that names the file, the field and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.userfiles import MAX_PROFILE_BYTES, read_regular_file

__all__ = [
    "LAYER_KINDS",
    "NAME_PATTERN",
    "OPTIONAL_PROFILE_FIELDS",
    "PLAUSIBLE_RANGES",
    "PROFILE_FIELDS",
    "PROFILE_SUFFIX",
    "DeviceProfile",
    "is_profile_path",
    "list_devices",
    "load_device",
    "shipped_profiles_dir",
]

PROFILE_SUFFIX = ".toml"
"""File name suffix of a device profile."""

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
"""What a device name may look like.

Names appear in test ids and in cluster specs such as ``"4xrpi4"`` and
``"rpi4+jetson-nano-10w"``, so they start with a letter and hold no ``,``, ``+`` or space.
"""


@dataclasses.dataclass(frozen=True)
class _Field:
    """How one profile key is checked and described in error messages."""

    kind: type  # str, float or int
    expected: str  # what a valid value is, as said in an error message
    minimum: float | None = None  # smallest allowed value, for numbers
    strict: bool = True  # whether the value must exceed minimum (>) or may equal it (>=)


_TEXT = "a non-empty string"
_FIELDS: dict[str, _Field] = {
    "name": _Field(str, _TEXT),
    "description": _Field(str, _TEXT),
    "network": _Field(str, _TEXT + ' such as "Gigabit Ethernet"'),
    "idle_w": _Field(float, "a power in watts greater than 0", 0.0),
    "active_w": _Field(float, "a power in watts, at least idle_w", 0.0),
    "macs_per_s": _Field(float, "a rate in multiply-accumulates per second greater than 0", 0.0),
    "mem_bytes_per_s": _Field(float, "a memory bandwidth in bytes per second greater than 0", 0.0),
    "memory_bytes": _Field(int, "an integer number of bytes greater than 0", 0.0),
    "net_bytes_per_s": _Field(float, "a network rate in bytes per second greater than 0", 0.0),
    # A zero latency or a zero energy per byte describes an idealised link: allowed.
    "net_latency_s": _Field(float, "a latency in seconds, 0 or more", 0.0, strict=False),
    "tx_j_per_byte": _Field(float, "an energy in joules per byte, 0 or more", 0.0, strict=False),
    "rx_j_per_byte": _Field(float, "an energy in joules per byte, 0 or more", 0.0, strict=False),
}

PROFILE_FIELDS: tuple[str, ...] = tuple(_FIELDS)
"""Every key a profile file must hold, in the order profiles list them."""

PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    # From a microcontroller asleep (microwatts) to a rack server (kilowatts).
    "idle_w": (1e-6, 1e4),
    "active_w": (1e-6, 1e4),
    # From a 1 MHz microcontroller without a multiplier (about 1e4 MAC/s) with margin, to
    # a data-centre accelerator (about 1e15 MAC/s) with margin.
    "macs_per_s": (1e3, 1e17),
    "mem_bytes_per_s": (1e3, 1e14),
    # From a kilobyte of microcontroller RAM to a petabyte.
    "memory_bytes": (1e3, 1e15),
    # From LoRa at its slowest (250 bit/s, about 31 B/s) with margin, to 8 Tbit/s.
    "net_bytes_per_s": (1.0, 1e12),
    # A minute: no link takes longer to deliver a message.
    "net_latency_s": (0.0, 60.0),
    # LoRa costs about 3e-3 J/B (0.1 W at 31 B/s); a joule per byte is far beyond any radio.
    "tx_j_per_byte": (0.0, 1.0),
    "rx_j_per_byte": (0.0, 1.0),
    # Optional figures. Sleep draws no more than idle; waking takes at most a minute and a
    # kilojoule; a radio message (headers, handshakes) costs at most a joule.
    "sleep_w": (0.0, 1e4),
    "wake_s": (0.0, 60.0),
    "wake_j": (0.0, 1e3),
    "tx_j_per_message": (0.0, 1.0),
    "rx_j_per_message": (0.0, 1.0),
}
"""The range (inclusive, in the field's unit) a figure of a profile file must lie in.

Wider than any real device, so it never rejects a real one; it catches a figure in the
wrong unit (Mbit/s as bytes/s), a typo'd exponent, or a number such as ``5e-324`` that
passes "greater than 0" yet makes every energy infinite.
"""
# Optional figures, used only by the scenarios that need them (docs/energy-model.md).
_OPTIONAL_FIELDS: dict[str, _Field] = {
    "sleep_w": _Field(float, "a power in watts, 0 or more and at most idle_w", 0.0, strict=False),
    "wake_s": _Field(float, "a time in seconds, 0 or more", 0.0, strict=False),
    "wake_j": _Field(float, "an energy in joules, 0 or more", 0.0, strict=False),
    "tx_j_per_message": _Field(float, "an energy in joules per message, 0 or more", 0.0,
                               strict=False),
    "rx_j_per_message": _Field(float, "an energy in joules per message, 0 or more", 0.0,
                               strict=False),
}

OPTIONAL_PROFILE_FIELDS: tuple[str, ...] = (*_OPTIONAL_FIELDS, "macs_per_s_by_kind")
"""Keys a profile may hold for the scenarios that use them; ``macs_per_s_by_kind`` is a table."""

LAYER_KINDS: tuple[str, ...] = ("conv", "pointwise", "depthwise", "linear", "elementwise")
"""The keys of a profile's ``[macs_per_s_by_kind]`` table (see ``energy/kinds.py``)."""

_KIND_RATE = _Field(float, "a rate in multiply-accumulates per second greater than 0", 0.0)


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """One device's figures for the energy model, as loaded from a profile file.

    Units are in the names: watts (``_w``), seconds (``_s``), bytes, joules (``_j``).
    Two profiles are equal when their figures and file contents are equal, wherever the
    files live: ``path`` takes no part in equality or hashing.
    """

    name: str
    description: str
    network: str
    idle_w: float
    active_w: float
    macs_per_s: float
    mem_bytes_per_s: float
    memory_bytes: int
    net_bytes_per_s: float
    net_latency_s: float
    tx_j_per_byte: float
    rx_j_per_byte: float
    path: str = dataclasses.field(default="", compare=False)
    sha256: str = ""
    # Optional figures (None: the profile does not give them); see OPTIONAL_PROFILE_FIELDS.
    sleep_w: float | None = None
    wake_s: float | None = None
    wake_j: float | None = None
    tx_j_per_message: float | None = None
    rx_j_per_message: float | None = None
    macs_per_s_by_kind: tuple[tuple[str, float], ...] = ()

    def kind_rates(self) -> dict[str, float]:
        """The ``[macs_per_s_by_kind]`` table as a dict (empty when the profile has none)."""
        return dict(self.macs_per_s_by_kind)

    def to_dict(self) -> dict[str, Any]:
        """Return every field as a JSON-able dict, for reports and baselines.

        Optional figures appear only when the profile gives them.
        """
        data = dataclasses.asdict(self)
        for key in _OPTIONAL_FIELDS:
            if data[key] is None:
                del data[key]
        if self.macs_per_s_by_kind:
            data["macs_per_s_by_kind"] = self.kind_rates()
        else:
            del data["macs_per_s_by_kind"]
        return data


def shipped_profiles_dir() -> Traversable:
    """Return the folder of the profiles shipped with the package.

    Installed, that is the package ``pytest_edgeenergy.devices``. In a source checkout
    (the package imported from the repository, not installed) it is ``devices/`` at the
    repository root, which the wheel maps to that package.
    """
    try:
        return resources.files("pytest_edgeenergy.devices")
    except ModuleNotFoundError:
        repo_root = Path(__file__).resolve().parent.parent
        # Only trust a sibling devices/ folder inside our own checkout, never one that
        # another distribution happened to install next to us in site-packages.
        if (repo_root / "pyproject.toml").is_file() and (repo_root / "devices").is_dir():
            return repo_root / "devices"
        raise ProfileError(
            "the shipped device profiles are missing: neither the package "
            f"'pytest_edgeenergy.devices' nor the folder {repo_root / 'devices'} exists; "
            "reinstall pytest-edgeenergy"
        ) from None


def list_devices(search_dirs: Sequence[Path] = ()) -> list[str]:
    """Return the sorted names of every profile in ``search_dirs`` and the shipped ones."""
    return sorted({name for name, _ in _candidates(search_dirs)})


def load_device(name_or_path: str | Path, search_dirs: Sequence[Path] = ()) -> DeviceProfile:
    """Load and check one device profile.

    ``name_or_path`` is a path when it is a :class:`~pathlib.Path`, or a string that ends
    in ``.toml`` or holds a path separator; otherwise it is a device name, looked up as
    ``<name>.toml`` in each of ``search_dirs`` in turn and then among the shipped profiles.

    Raises :class:`~pytest_edgeenergy.errors.ProfileError` for a missing file, an unknown
    name, or a malformed or out-of-range profile.
    """
    if is_profile_path(name_or_path):
        path = Path(name_or_path)
        return _parse(_read(path), str(path.resolve()), path.name)

    name = str(name_or_path)
    for candidate_name, location in _candidates(search_dirs):
        if candidate_name == name:
            return _parse(_read(location), str(location), location.name)
    raise ProfileError(_unknown_device_message(name, search_dirs))


def _read(location: Path | Traversable) -> bytes:
    """The bytes of a profile file: a regular file of bounded size (see userfiles)."""
    if not isinstance(location, Path):  # inside an installed package (perhaps a zip)
        return location.read_bytes()
    try:
        return read_regular_file(location, MAX_PROFILE_BYTES)
    except FileNotFoundError:
        raise ProfileError(f"device profile not found: {location}") from None
    except OSError as exc:
        raise ProfileError(f"cannot read device profile {location}: "
                           f"{exc.strerror or exc}") from None


def is_profile_path(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a profile file (a Path, ``*.toml`` or a path with a
    separator) rather than a device name."""
    if isinstance(name_or_path, Path):
        return True
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return name_or_path.endswith(PROFILE_SUFFIX) or any(s in name_or_path for s in separators)


def _search_locations(search_dirs: Sequence[Path]) -> list[Traversable]:
    return [*(Path(d) for d in search_dirs), shipped_profiles_dir()]


def _candidates(search_dirs: Sequence[Path]) -> Iterator[tuple[str, Traversable]]:
    """Yield (name, file) for each profile, the user's folders first, shipped ones last."""
    for folder in _search_locations(search_dirs):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(PROFILE_SUFFIX) and entry.is_file():
                yield entry.name[: -len(PROFILE_SUFFIX)], entry


def _unknown_device_message(name: str, search_dirs: Sequence[Path]) -> str:
    known = list_devices(search_dirs)
    searched = ", ".join(
        f"{folder}{'' if folder.is_dir() else ' (missing)'}"
        for folder in _search_locations(search_dirs)
    )
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return (
        f"unknown device '{name}'{hint} Known devices: {', '.join(known) or 'none'}. "
        f"Searched: {searched}"
    )


def _parse(data: bytes, path: str, file_name: str) -> DeviceProfile:
    """Check the bytes of a profile file and build the profile; ``path`` names it in errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start}): not a TOML file") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries TOML's own "(at line L, column C)".
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None

    _check_keys(table, path)
    values = {key: _check_value(key, table[key], path) for key in PROFILE_FIELDS}
    values.update(_optional_values(table, path))

    if values["active_w"] < values["idle_w"]:
        raise ProfileError(
            f"{path}: field 'active_w' must be at least idle_w ({values['idle_w']} W), "
            f"got {values['active_w']} W"
        )
    name = values["name"]
    if not NAME_PATTERN.fullmatch(name):
        raise ProfileError(
            f"{path}: field 'name' must start with a letter and hold only letters, digits, "
            f"'_', '.' and '-', got {name!r}"
        )
    stem = file_name.removesuffix(PROFILE_SUFFIX)
    if name != stem:
        raise ProfileError(
            f"{path}: field 'name' must equal the file name without {PROFILE_SUFFIX} "
            f"({stem!r}), since profiles are looked up by file name; got {name!r}"
        )
    return DeviceProfile(**values, path=path, sha256=hashlib.sha256(data).hexdigest())


def _optional_values(table: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The optional figures the profile gives, checked (see OPTIONAL_PROFILE_FIELDS)."""
    values: dict[str, Any] = {}
    for key in _OPTIONAL_FIELDS:
        if key in table:
            values[key] = _check_value(key, table[key], path, _OPTIONAL_FIELDS[key])
    sleep_w = values.get("sleep_w")
    if sleep_w is not None and sleep_w > table["idle_w"]:
        raise ProfileError(f"{path}: field 'sleep_w' must be at most idle_w ({table['idle_w']} "
                           f"W), got {sleep_w} W")
    kinds = table.get("macs_per_s_by_kind")
    if kinds is None:
        return values
    if not isinstance(kinds, dict):
        raise ProfileError(f"{path}: field 'macs_per_s_by_kind' must be a table "
                           f"([macs_per_s_by_kind] with keys {', '.join(LAYER_KINDS)}), "
                           f"got {_describe(kinds)}")
    rates = []
    for kind, rate in kinds.items():
        if kind not in LAYER_KINDS:
            close = difflib.get_close_matches(kind, LAYER_KINDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            raise ProfileError(f"{path}: unknown layer kind '{kind}' in [macs_per_s_by_kind]"
                               f"{hint} Expected only: {', '.join(LAYER_KINDS)}")
        rates.append((kind, _check_value(f"macs_per_s_by_kind.{kind}", rate, path, _KIND_RATE)))
    values["macs_per_s_by_kind"] = tuple(sorted(rates, key=lambda kr: LAYER_KINDS.index(kr[0])))
    return values


def _check_keys(table: Mapping[str, Any], path: str) -> None:
    # Unknown keys first: a misspelt key is also a missing one, and the suggestion is the
    # more useful of the two messages.
    known = (*PROFILE_FIELDS, *OPTIONAL_PROFILE_FIELDS)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            raise ProfileError(
                f"{path}: unknown field '{key}'{hint} Expected only: {', '.join(PROFILE_FIELDS)}"
                f" (optional: {', '.join(OPTIONAL_PROFILE_FIELDS)})"
            )
    for key, spec in _FIELDS.items():
        if key not in table:
            raise ProfileError(f"{path}: missing field '{key}': expected {spec.expected}")


def _check_value(key: str, value: Any, path: str, spec: _Field | None = None) -> Any:
    spec = spec or _FIELDS[key]
    got = f"got {_describe(value)}"
    if spec.kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ProfileError(f"{path}: field '{key}' must be {spec.expected}, {got}")
        return value
    # bool is an int subclass in Python, but True is no number of watts.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
        hint = " (write it without a decimal point or exponent)" if is_number else ""
        raise ProfileError(f"{path}: field '{key}' must be {spec.expected}{hint}, {got}")
    if not is_number:
        raise ProfileError(f"{path}: field '{key}' must be {spec.expected}, {got}")
    if not math.isfinite(value):
        raise ProfileError(f"{path}: field '{key}' must be a finite number, {got}")
    if spec.minimum is not None:
        too_small = value <= spec.minimum if spec.strict else value < spec.minimum
        if too_small:
            raise ProfileError(f"{path}: field '{key}' must be {spec.expected}, {got}")
    _check_plausible(key, value, path)
    return value if spec.kind is int else float(value)


def _check_plausible(key: str, value: Any, path: str) -> None:
    # a [macs_per_s_by_kind] rate has the range of macs_per_s
    bounds = PLAUSIBLE_RANGES.get(key.split(".")[0].removesuffix("_by_kind"))
    if bounds is None or bounds[0] <= value <= bounds[1]:
        return
    raise ProfileError(
        f"{path}: field '{key}' = {value!r} is outside the plausible range for a device, "
        f"{bounds[0]:g} to {bounds[1]:g} (the unit is in the name): check its unit and "
        f"exponent")


def _describe(value: Any) -> str:
    kinds = {bool: "boolean", str: "string", int: "integer", float: "number", dict: "table"}
    kind = kinds.get(type(value), "array" if isinstance(value, list) else type(value).__name__)
    return f"{value!r} ({kind})"
