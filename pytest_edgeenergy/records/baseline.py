"""The baseline file: the committed energy figures of every case, and reading it back safely.

A baseline is a JSON object written with sorted keys and two-space indents, so each case is
one block that diffs on its own and the file is byte-for-byte the same for the same figures::

    {
      "cases": {
        "tinycnn|layer|4xrpi4|1x3x32x32|board": {
          "cluster": "4xrpi4", "energy": {...}, "energy_model": "board",
          "input_shape": [1, 3, 32, 32], "model": "tinycnn", "plugin_version": "0.1.0",
          "profiles": {"rpi4": "<sha256 of rpi4.toml>"}, "strategy": "layer",
          "strategy_params": {}, "tests": ["suites/test_energy_matrix.py::test_each_case..."]
        }
      },
      "format": "pytest-edgeenergy-baseline/1",
      "generator": "pytest-edgeenergy: update with pytest --edge-update-baseline"
    }

An :class:`Entry` holds only figures that are a pure function of the plan, the profiles and
the energy model (no wall time, no numerical error of the inference), so a baseline is exact
on every machine. Saved runs (:mod:`.runs`) hold entries of the same shape.

Reading and writing live here together: :func:`load_baseline` checks everything and raises
:class:`BaselineError` with one message naming the file and what is wrong; :func:`save_baseline`
writes the file atomically, only when its text changes. Nothing here ever writes over a file
it could not read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import EdgeEnergyError
from ..userfiles import MAX_RECORD_BYTES, read_regular_file
from .results import DEFAULT_SCENARIO_TEXT, CaseEnergy, CaseId, CaseResult, DeviceResult

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_BASELINE",
    "Baseline",
    "BaselineError",
    "Entry",
    "dump_json",
    "function_id",
    "load_baseline",
    "parse_json_object",
    "plugin_version",
    "save_baseline",
]

BASELINE_FORMAT = "pytest-edgeenergy-baseline/1"
"""The ``format`` field that marks a file as a baseline of this plugin (and its version)."""

DEFAULT_BASELINE = "suites/edgeenergy-baseline.json"
"""Where the baseline lives when ``--edge-baseline`` is not given (relative to the rootdir)."""

GENERATOR = "pytest-edgeenergy: update with pytest --edge-update-baseline"
"""A note for the reader of the file: how it is meant to change."""


class BaselineError(EdgeEnergyError):
    """A baseline or saved run that cannot be used; the message names the file and why."""


def plugin_version() -> str:
    """The version of pytest-edgeenergy writing an entry."""
    from .. import __version__

    return __version__


def function_id(nodeid: str) -> str:
    """A test's node id without its parametrisation: the test function that produced a case."""
    if nodeid.endswith("]") and "[" in nodeid:
        return nodeid[:nodeid.index("[")]
    return nodeid


@dataclasses.dataclass(frozen=True)
class Entry(CaseId):
    """One case's figures as a baseline (or a saved run) records them.

    ``tests`` names the test functions that produced it (node ids without parameters): that
    is how a later run knows whether it could have produced the entry (see
    :mod:`.selection`). ``plugin_version`` is the version that recorded it.
    """

    energy: CaseEnergy
    plugin_version: str
    tests: tuple[str, ...] = ()
    scenario: str = DEFAULT_SCENARIO_TEXT  # the conditions the figures were estimated under

    @property
    def profiles(self) -> dict[str, str]:
        """The sha256 of each device profile used, by profile name."""
        return {d.profile: d.profile_sha256 for d in self.energy.devices}

    @classmethod
    def from_case(cls, case: CaseResult, tests: Iterable[str] = ()) -> Entry:
        """The entry of a case that has energy figures."""
        if case.energy is None:
            raise ValueError(f"case {case.key} has no energy figures to record")
        return cls(model=case.model, strategy=case.strategy,
                   strategy_params=json.loads(json.dumps(case.to_dict()["strategy_params"])),
                   cluster=case.cluster, input_shape=tuple(case.input_shape),
                   energy_model=case.energy_model, energy=case.energy,
                   plugin_version=plugin_version(), tests=tuple(sorted(set(tests))),
                   scenario=case.scenario)

    def to_case(self, nodeid: str = "") -> CaseResult:
        """A passed :class:`~.results.CaseResult` with these figures (for the report tables)."""
        return CaseResult(model=self.model, strategy=self.strategy,
                          strategy_params=dict(self.strategy_params), cluster=self.cluster,
                          input_shape=self.input_shape, energy_model=self.energy_model,
                          status="passed", nodeid=nodeid, energy=self.energy,
                          scenario=self.scenario)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the block of one case in the file)."""
        return {
            "model": self.model, "strategy": self.strategy,
            "strategy_params": self.strategy_params, "cluster": self.cluster,
            "input_shape": list(self.input_shape), "energy_model": self.energy_model,
            "scenario": self.scenario, "energy": self.energy.to_dict(), "profiles": self.profiles,
            "plugin_version": self.plugin_version, "tests": list(self.tests),
        }

    def same_figures(self, other: Entry) -> bool:
        """Whether both record the same case with the same figures and profiles."""
        mine, theirs = self.to_dict(), other.to_dict()
        for data in (mine, theirs):
            data.pop("plugin_version")
            data.pop("tests")
        return mine == theirs

    @classmethod
    def from_dict(cls, key: str, data: object) -> Entry:
        """Read and check one entry; raise :class:`ValueError` saying what is wrong."""
        record = _mapping(data, "the entry")
        fields = {"model": str, "strategy": str, "cluster": str, "energy_model": str,
                  "plugin_version": str}
        for name, kind in fields.items():
            if not isinstance(record.get(name), kind) or not record[name]:
                raise ValueError(f"field '{name}' must be a non-empty string, got "
                                 f"{_describe(record.get(name), name in record)}")
        params = record.get("strategy_params", {})
        if not isinstance(params, dict):
            raise ValueError(f"field 'strategy_params' must be an object, got "
                             f"{_describe(params, True)}")
        shape = record.get("input_shape")
        if (not isinstance(shape, list) or not shape
                or not all(_is_int(s) and s > 0 for s in shape)):
            raise ValueError(f"field 'input_shape' must be a list of positive integers, got "
                             f"{_describe(shape, 'input_shape' in record)}")
        tests = record.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"field 'tests' must be a list of test names, got "
                             f"{_describe(tests, True)}")
        energy = _energy(record.get("energy"), "energy" in record)
        # An entry without a scenario was recorded before scenarios existed: the default.
        scenario = record.get("scenario", DEFAULT_SCENARIO_TEXT)
        if not isinstance(scenario, str) or not scenario:
            raise ValueError(f"field 'scenario' must be a scenario's text such as "
                             f"'{DEFAULT_SCENARIO_TEXT}', got {_describe(scenario, True)}")
        entry = cls(model=record["model"], strategy=record["strategy"],
                    strategy_params=dict(params), cluster=record["cluster"],
                    input_shape=tuple(shape), energy_model=record["energy_model"],
                    energy=energy, plugin_version=record["plugin_version"],
                    tests=tuple(tests), scenario=scenario)
        if entry.key != key:
            raise ValueError(f"its fields make the key '{entry.key}', not the key it is "
                             "filed under")
        names = [d.profile for d in energy.devices]
        spelled = {"+".join(names)} | ({f"{len(names)}x{names[0]}"} if len(set(names)) == 1
                                       else set())
        if entry.cluster not in spelled:
            raise ValueError(f"its {len(names)} device(s) ({', '.join(names)}) are not the "
                             f"cluster '{entry.cluster}'")
        profiles = record.get("profiles")
        if profiles is not None and profiles != entry.profiles:
            raise ValueError("field 'profiles' disagrees with the devices' profile_sha256")
        return entry


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _describe(value: object, present: bool) -> str:
    if not present:
        return "nothing (the field is missing)"
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(
        value)
    return text if len(text) <= 40 else text[:37] + "..."


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {_describe(value, True)}")
    return value


# What each field of the energy records must be, from the dataclasses' own annotations, so a
# field added to CaseEnergy or DeviceResult is checked without touching this module.
_KINDS = {"float": "a finite number", "int": "an integer", "bool": "true or false",
          "str": "a non-empty string"}


def _check_fields(record: Mapping[str, Any], cls: type, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if kind not in _KINDS:
            continue
        value: Any = record.get(field.name)
        # Every figure of a case is a count, a time, an energy or a size: none is negative.
        ok = {"float": _is_number(value) and value >= 0, "int": _is_int(value) and value >= 0,
              "bool": isinstance(value, bool),
              "str": isinstance(value, str) and bool(value)}[kind]
        if not ok:
            expected = _KINDS[kind] + (" of 0 or more" if kind in ("float", "int") else "")
            raise ValueError(f"{where}field '{field.name}' must be {expected}, got "
                             f"{_describe(value, field.name in record)}")
        out[field.name] = value
    return out


def _energy(value: object, present: bool) -> CaseEnergy:
    if not present:
        raise ValueError("field 'energy' is missing")
    record = _mapping(value, "field 'energy'")
    figures = _check_fields(record, CaseEnergy, "energy: ")
    devices = record.get("devices")
    if not isinstance(devices, list) or not devices:
        raise ValueError(f"energy: field 'devices' must be a non-empty list, got "
                         f"{_describe(devices, 'devices' in record)}")
    parsed = []
    for index, item in enumerate(devices):
        device = _mapping(item, f"energy: device {index}")
        values = _check_fields(device, DeviceResult, f"energy: device {index}: ")
        if values["index"] != index:
            raise ValueError(f"energy: device {index}: field 'index' must be {index} (devices "
                             f"are listed in order), got {values['index']}")
        parsed.append(DeviceResult(**values))
    period_s = record.get("period_s")  # only a stream's records have a period
    if period_s is not None and not (_is_number(period_s) and period_s >= 0):
        raise ValueError(f"energy: field 'period_s' must be a finite number of 0 or more, got "
                         f"{_describe(period_s, True)}")
    return CaseEnergy(**figures, devices=tuple(parsed), period_s=period_s)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key '{key}' appears twice in one object (a merge gone "
                             "wrong?)")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_object(path: Path, what: str) -> dict[str, Any]:
    """Read ``path`` as one JSON object; raise :class:`BaselineError` naming it and the fault.

    ``what`` names the kind of file in the message ("baseline", "saved run").
    """
    try:
        data = read_regular_file(path, MAX_RECORD_BYTES)
    except IsADirectoryError:
        raise BaselineError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise BaselineError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise BaselineError(f"{what} {path} is empty (truncated?): expected a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{what} {path} is not UTF-8 text (byte {exc.start}): not a "
                            "JSON file") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicates,
                            parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        # Every file this plugin writes ends with the object's closing brace.
        hint = "" if text.rstrip().endswith("}") else "; the file ends early: truncated?"
        raise BaselineError(f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno}, "
                            f"column {exc.colno}{hint})") from None
    except ValueError as exc:
        raise BaselineError(f"{what} {path} is not valid: {exc}") from None
    except RecursionError:
        raise BaselineError(f"{what} {path} is nested too deeply to be ours") from None
    if not isinstance(parsed, dict):
        raise BaselineError(f"{what} {path} holds JSON {type(parsed).__name__}, not an object: "
                            "it was not written by pytest-edgeenergy")
    return parsed


def check_format(data: Mapping[str, Any], path: Path, what: str, expected: str) -> None:
    """Raise :class:`BaselineError` unless ``data`` carries the format marker ``expected``."""
    found = data.get("format")
    family, version = expected.rsplit("/", 1)
    if isinstance(found, str) and found.startswith(family + "/") and found != expected:
        theirs = found.removeprefix(family + "/")
        older = theirs.isdigit() and version.isdigit() and int(theirs) < int(version)
        cannot = (f"{what} {path} has format '{found}', which this version of "
                  f"pytest-edgeenergy ({plugin_version()}) cannot read (it reads '{expected}')")
        if older:
            again = ("move it away and record a new one with pytest --edge-update-baseline"
                     if what == "baseline" else
                     "move it out of the folder; new runs are saved with --edge-autosave")
            raise BaselineError(f"{cannot}: it was written by an older version; {again}")
        raise BaselineError(f"{cannot}: upgrade pytest-edgeenergy")
    if found != expected:
        keys = ", ".join(sorted(map(str, data))[:6]) or "none"
        raise BaselineError(f"{what} {path} is not a pytest-edgeenergy {what}: it has no "
                            f"\"format\": \"{expected}\" field (found format {found!r}; its "
                            f"keys: {keys})")


def read_entries(data: Mapping[str, Any], path: Path, what: str) -> dict[str, Entry]:
    """The checked entries of a baseline's or a saved run's ``cases`` object."""
    cases = data.get("cases")
    if not isinstance(cases, dict):
        raise BaselineError(f"{what} {path}: field 'cases' must be an object of case entries, "
                            f"got {_describe(cases, 'cases' in data)}")
    entries: dict[str, Entry] = {}
    for key, value in cases.items():
        try:
            entries[key] = Entry.from_dict(key, value)
        except (ValueError, TypeError) as exc:
            raise BaselineError(f"{what} {path}: entry '{key}': {exc}") from None
    return entries


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A baseline file's entries by case key, and where it was read from."""

    path: Path
    entries: dict[str, Entry]

    def get(self, key: str) -> Entry | None:
        """The entry of case ``key``, if the baseline has one."""
        return self.entries.get(key)

    def to_json(self) -> str:
        """The file's text: sorted keys, one block per case, a trailing newline."""
        return dump_json({"format": BASELINE_FORMAT, "generator": GENERATOR,
                          "cases": {k: e.to_dict() for k, e in self.entries.items()}})


def dump_json(data: Mapping[str, Any]) -> str:
    """JSON with sorted keys, two-space indents and a trailing newline (diffs well)."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at ``path``, ``None`` if there is no file; :class:`BaselineError` if bad."""
    if not os.path.lexists(path):
        return None
    data = parse_json_object(path, "baseline")
    check_format(data, path, "baseline", BASELINE_FORMAT)
    return Baseline(path, read_entries(data, path, "baseline"))


def save_baseline(path: Path, entries: Mapping[str, Entry]) -> bool:
    """Write the baseline of ``entries`` (sorted by key) to ``path`` atomically.

    Return whether the file was written: a file that already holds this text is left alone.
    An :class:`OSError` leaves the previous file as it was.
    """
    text = Baseline(path, dict(sorted(entries.items()))).to_json()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomic(path, text)
    return True
