"""The per-case result record, and the collector that holds a session's records.

A :class:`CaseResult` is what one ``edge_run()`` produced: which case it was (model, strategy,
cluster, input shape, energy model), whether the partitioned output equalled the reference,
and every energy figure per device. Its :meth:`~CaseResult.to_dict` form is plain JSON with
stable keys, so it travels from pytest-xdist workers to the controller, lands in report files
and can be compared against a committed baseline; :meth:`~CaseResult.from_dict` restores it.
:attr:`CaseResult.key` names the case the same way in every run.

A session's records live in a :class:`ResultCollector` (on a pytest-xdist worker: that
worker's). Nothing here imports pytest or torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..figures import DeviceFigures, figures_of
from ..finite import first_non_finite
from .format import format_shape

if TYPE_CHECKING:  # only annotations: records import neither torch nor pytest
    from ..cluster import Cluster
    from ..energy import EnergyEstimate
    from ..plan import Plan

__all__ = [
    "CASE_FORMAT",
    "DEFAULT_SCENARIO_TEXT",
    "ERROR",
    "NOT_EQUIVALENT",
    "PASSED",
    "CaseEnergy",
    "CaseId",
    "CaseResult",
    "DeviceResult",
    "ResultCollector",
    "case_key",
]

CASE_FORMAT = "pytest-edgeenergy-case/1"
"""The ``format`` field of a serialised :class:`CaseResult`; bumped on incompatible change."""

PASSED = "passed"
"""Status of a case whose partitioned output equals the reference within tolerance."""
NOT_EQUIVALENT = "not-equivalent"
"""Status of a case whose partitioned output differs from the reference."""
ERROR = "error"
"""Status of a case that could not be partitioned, run or estimated."""

DEFAULT_SCENARIO_TEXT = "workload=single,power=always-on,network=half-duplex"
"""The text of the default scenario (``str(pytest_edgeenergy.energy.DEFAULT_SCENARIO)``,
spelled out so records import no energy code): what a record without a scenario was made
under."""


def case_key(model: str, strategy: str, cluster: str, input_shape: Sequence[int],
             energy_model: str) -> str:
    """The stable name of a case, e.g. ``"tinycnn|layer|4xrpi4|1x3x32x32|board"``."""
    return f"{model}|{strategy}|{cluster}|{format_shape(input_shape)}|{energy_model}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceResult(DeviceFigures):
    """One device's figures in one case (those of
    :class:`~pytest_edgeenergy.figures.DeviceFigures`, and which device it is). Units are in
    the names."""

    index: int
    profile: str
    profile_sha256: str  # of the profile file: tells a changed device from a changed plan
    memory_bytes: int
    idle: bool  # computes nothing in this plan

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceResult:
        """Restore from :meth:`to_dict` output."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class CaseEnergy:
    """The energy figures of one case: totals over the cluster and one record per device."""

    energy_model_version: str
    makespan_s: float
    max_device_j: float
    mean_device_j: float
    total_j: float
    comm_bytes: int
    graph_macs: int
    redundant_macs: int  # MACs beyond the unpartitioned model's (halo recompute)
    devices: tuple[DeviceResult, ...]
    period_s: float | None = None  # time between images of a stream (None: one image)

    @property
    def redundant_macs_pct(self) -> float:
        """Halo recompute as a percentage of the unpartitioned model's MACs."""
        return 100.0 * self.redundant_macs / self.graph_macs if self.graph_macs else 0.0

    @property
    def max_peak_bytes(self) -> int:
        """The largest peak memory of any device."""
        return max(d.peak_bytes for d in self.devices)

    @property
    def fits(self) -> bool:
        """Whether every device's peak memory is within its memory."""
        return all(d.fits for d in self.devices)

    @property
    def unfit_devices(self) -> int:
        """How many devices need more memory than they have."""
        return sum(not d.fits for d in self.devices)

    @classmethod
    def from_estimate(cls, estimate: EnergyEstimate, plan: Plan, cluster: Cluster) -> CaseEnergy:
        """Collect the figures of an energy estimate, a plan and the cluster it ran on."""
        idle = set(plan.idle_devices())
        devices = tuple(
            DeviceResult(**figures_of(e), index=d, profile=profile.name,
                         profile_sha256=profile.sha256, memory_bytes=profile.memory_bytes,
                         idle=d in idle)
            for d, (e, profile) in enumerate(zip(estimate.devices, cluster, strict=True)))
        return cls(
            energy_model_version=estimate.model_version, makespan_s=estimate.makespan_s,
            max_device_j=estimate.max_device_j, mean_device_j=estimate.mean_device_j,
            total_j=estimate.total_j, comm_bytes=plan.comm_bytes, graph_macs=plan.graph_macs,
            redundant_macs=plan.redundant_macs, devices=devices,
            period_s=estimate.period_s if "workload=stream" in estimate.scenario else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, the derived figures included for readers of the file."""
        out = dataclasses.asdict(self)
        out["devices"] = [d.to_dict() for d in self.devices]
        if self.period_s is None:  # one image: the record is as it was before streams
            del out["period_s"]
        out["redundant_macs_pct"] = self.redundant_macs_pct
        out["max_peak_bytes"] = self.max_peak_bytes
        out["fits"] = self.fits
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseEnergy:
        """Restore from :meth:`to_dict` output (derived figures are recomputed)."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"devices", "period_s"}
        return cls(**{name: data[name] for name in fields},
                   devices=tuple(DeviceResult.from_dict(d) for d in data["devices"]),
                   period_s=data.get("period_s"))


@dataclasses.dataclass(frozen=True)
class CaseId:
    """Which case a record is about: what a result, a baseline entry and a saved run share."""

    model: str
    strategy: str  # the strategy's label: its name, plus parameters that differ from defaults
    strategy_params: dict[str, Any]
    cluster: str  # the cluster's signature, e.g. "4xrpi4"
    input_shape: tuple[int, ...]
    energy_model: str

    @property
    def key(self) -> str:
        """The case's stable name; see :func:`case_key`."""
        return case_key(self.model, self.strategy, self.cluster, self.input_shape,
                        self.energy_model)

    @property
    def group(self) -> tuple[str, str, tuple[int, ...], str]:
        """The comparison this case belongs to: (model, cluster, input shape, energy model)."""
        return (self.model, self.cluster, self.input_shape, self.energy_model)


@dataclasses.dataclass(frozen=True)
class CaseResult(CaseId):
    """What one ``edge_run()`` produced, as JSON-able data with stable keys.

    ``energy`` is ``None`` only for a case with status :data:`ERROR` that failed before its
    plan existed. ``max_abs_error`` and ``tolerance`` are the equivalence check's figures
    (``None`` when it did not run).
    """

    status: str
    nodeid: str
    message: str = ""
    max_abs_error: float | None = None
    tolerance: float | None = None
    energy: CaseEnergy | None = None
    scenario: str = DEFAULT_SCENARIO_TEXT
    # With --edge-sensitivity: the case's figures under changed profiles, the JSON form of
    # pytest_edgeenergy.robustness.CaseSensitivity, which the report ranks per group.
    sensitivity: dict[str, Any] | None = None
    explanation: str = ""  # what the strategy said of its plan as a whole (search: its choices)
    # Measured (gloo timeline) next to simulated times: busy and comm per device, makespan.
    timing: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the case passed and has energy figures to rank."""
        return self.status == PASSED and self.energy is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with stable keys (``format``, ``key`` and every field)."""
        out = {
            "format": CASE_FORMAT, "key": self.key, "model": self.model,
            "strategy": self.strategy, "strategy_params": _jsonable(self.strategy_params),
            "cluster": self.cluster, "input_shape": list(self.input_shape),
            "energy_model": self.energy_model, "status": self.status, "nodeid": self.nodeid,
            "message": self.message, "max_abs_error": self.max_abs_error,
            "tolerance": self.tolerance,
            "energy": None if self.energy is None else self.energy.to_dict(),
            "scenario": self.scenario, "sensitivity": self.sensitivity,
            "explanation": self.explanation,
        }
        if self.timing is not None:  # only gloo runs measure one; other records keep their form
            out["timing"] = self.timing
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        """Restore from :meth:`to_dict` output; a foreign dict raises ``ValueError``."""
        if data.get("format") != CASE_FORMAT:
            raise ValueError(f"not a pytest-edgeenergy case record (format="
                             f"{data.get('format')!r}, expected {CASE_FORMAT!r})")
        energy = data.get("energy")
        return cls(
            model=data["model"], strategy=data["strategy"],
            strategy_params=dict(data["strategy_params"]), cluster=data["cluster"],
            input_shape=tuple(data["input_shape"]), energy_model=data["energy_model"],
            status=data["status"], nodeid=data["nodeid"], message=data["message"],
            max_abs_error=data["max_abs_error"], tolerance=data["tolerance"],
            energy=None if energy is None else CaseEnergy.from_dict(energy),
            scenario=data.get("scenario", DEFAULT_SCENARIO_TEXT),
            sensitivity=data.get("sensitivity"), timing=data.get("timing"),
            explanation=str(data.get("explanation", "")))


def _jsonable(value: Any) -> Any:
    """Strategy parameters as JSON: containers kept, other objects as their repr."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _preference(case: CaseResult) -> tuple[int, str]:
    # A failed record of a case wins over a passed one, so failures are never hidden; among
    # equals the smallest node id wins, so the choice does not depend on arrival order
    # (which differs under pytest-xdist).
    return (0 if case.status != PASSED else 1, case.nodeid)


class ResultCollector:
    """Every case recorded in a session (on a worker: by that worker)."""

    def __init__(self) -> None:
        self._records: list[CaseResult] = []

    def add(self, case: CaseResult) -> None:
        """Record one case; one holding a NaN or infinite figure is recorded as an error
        instead, so that no report or baseline write fails on it."""
        non_finite = None if case.energy is None else first_non_finite(case.energy.to_dict())
        if non_finite is not None:
            case = dataclasses.replace(case, status=ERROR, energy=None,
                                       message=f"non-finite energy figure: {non_finite}")
        self._records.append(case)

    def extend(self, cases: Iterable[CaseResult]) -> None:
        """Record several cases (a worker's, on the controller)."""
        for case in cases:
            self.add(case)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CaseResult]:
        return iter(self._records)

    def records(self) -> list[CaseResult]:
        """Every record, in a stable order (by key, then node id)."""
        return sorted(self._records, key=lambda c: (c.key, c.nodeid))

    def cases(self) -> list[CaseResult]:
        """One record per case key (several tests may run the same case), sorted by key."""
        best: dict[str, CaseResult] = {}
        for case in self._records:
            old = best.get(case.key)
            if old is None or _preference(case) < _preference(old):
                best[case.key] = case
        return [best[k] for k in sorted(best)]

    def failures(self) -> list[CaseResult]:
        """Every record that did not pass, by node id."""
        return sorted((c for c in self._records if c.status != PASSED), key=lambda c: c.nodeid)

    def to_json_list(self) -> list[dict[str, Any]]:
        """Every record as JSON-able dicts (what a worker hands the controller)."""
        return [c.to_dict() for c in self.records()]

