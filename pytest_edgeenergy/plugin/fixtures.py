"""Fixtures and parametrisation: one test case per model x strategy x cluster.

``edge_model``, ``edge_strategy`` and ``edge_cluster`` are session-scoped fixtures that
:func:`generate_tests` parametrises from the registries and options, with readable ids such
as ``resnet18-output-channel-4xrpi4``. A test parametrises one of them itself with
``@pytest.mark.parametrize("edge_strategy", [MyStrategy()], indirect=True)``; the plugin then
leaves that one alone. ``edge_run`` runs one case; see :class:`EdgeRunner`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from .. import strategies
from ..atomic import write_atomic
from ..checks import as_seed, as_shape, as_tolerance, check_tensor_input
from ..cluster import Cluster, as_cluster
from ..energy import EnergyEstimate, estimate_energy
from ..energy.sensitivity import case_sensitivity
from ..equivalence import DEFAULT_TOLERANCE, check_equivalence
from ..errors import EdgeEnergyError, PartitionError
from ..finite import first_non_finite
from ..graph.onnx_import import OnnxModel, is_onnx_path
from ..meters import Meter, MeterError
from ..meters.compare import MeasuredRow
from ..partitioned import PartitionedModel, partition
from ..plan import Plan
from ..records.results import (
    ERROR,
    NOT_EQUIVALENT,
    PASSED,
    CaseEnergy,
    CaseResult,
    case_key,
)
from ..records.tracking import check_case
from ..strategies.conditions import for_run
from ..strategies.protocol import Strategy
from ..timeline import compare_times
from ..trace import Trace
from ..zoo import ModelSpec
from ..zoo.registry import build_seeded
from .ci import record_case_properties
from .gloo import GLOO_KEY
from .options import BACKEND_NAMES
from .registry import EdgeRegistry
from .session import EDGE_ARGNAMES, EdgeSession, edge_session

__all__ = [
    "EDGE_ARGNAMES",
    "EQUIVALENCE_TOLERANCE",
    "EdgeModel",
    "EdgeResult",
    "EdgeRunner",
    "edge_cluster",
    "edge_meter",
    "edge_model",
    "edge_run",
    "edge_strategy",
    "generate_tests",
    "make_input",
    "param_id",
    "strategy_label",
]

EQUIVALENCE_TOLERANCE = DEFAULT_TOLERANCE
"""How far the partitioned output may be from the reference, relative to its largest finite
value (see :data:`pytest_edgeenergy.equivalence.DEFAULT_TOLERANCE`)."""

@dataclasses.dataclass(frozen=True)
class EdgeModel:
    """A model to partition: a name, the module (eval mode) and its input shape (N, C, H, W).

    ``seed`` is the weight seed of a model built from a registry; ``None`` for a module the
    user built. Reference outputs are cached per module object and weights, never per name.
    """

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    seed: int | None = 0


@dataclasses.dataclass(frozen=True)
class EdgeResult:
    """What ``edge_run()`` returns; unpacks as ``output, trace, energy``."""

    output: Tensor
    trace: Trace
    energy: EnergyEstimate
    reference: Tensor
    plan: Plan
    partitioned: PartitionedModel
    case: CaseResult
    measured: MeasuredRow | None = None  # with --edge-meter: the measured energy (local)
    #: with --edge-meter on the gloo backend: one row per device, measured by its rank
    measured_devices: tuple[MeasuredRow, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        """``output, trace, energy = edge_run()``."""
        return iter((self.output, self.trace, self.energy))


def strategy_label(strategy: Strategy) -> str:
    """The strategy's name, with the parameters that differ from its defaults.

    ``SpatialStrategy()`` is ``spatial``; ``SpatialStrategy(fuse=3)`` is ``spatial(fuse=3)``,
    so two variants of one strategy get distinct ids and report rows.
    """
    params = dict(getattr(strategy, "params", {}) or {})
    try:
        defaults = dict(getattr(type(strategy)(), "params", {}) or {})
    except Exception:  # a class that needs arguments has no defaults to compare with
        defaults = {}
    changed = {k: v for k, v in sorted(params.items()) if defaults.get(k, object()) != v}
    if not changed:
        return strategy.name
    return f"{strategy.name}({','.join(f'{k}={v!r}' for k, v in changed.items())})"


def make_input(shape: Sequence[int], seed: int = 0) -> Tensor:
    """A standard-normal float32 input of ``shape``, the same for the same seed everywhere."""
    generator = torch.Generator().manual_seed(as_seed(seed))
    return torch.randn(as_shape(shape, rank=None), generator=generator, dtype=torch.float32)


def param_id(value: object, argname: str) -> str | None:
    """The test id of a value given for one of the plugin's fixtures (None: pytest decides)."""
    if argname == "edge_cluster":
        if isinstance(value, Cluster):
            return value.signature
        if isinstance(value, int | str):
            return str(value)
    if argname == "edge_model" and isinstance(value, EdgeModel | ModelSpec):
        return value.name
    if argname == "edge_strategy":
        if isinstance(value, str):
            return value
        name = getattr(value, "name", None)
        if isinstance(value, type) and isinstance(name, str):
            return name
        if isinstance(value, Strategy):
            return strategy_label(value)
    return None


# Fixtures resolve names against every loaded plugin and conftest file (``registry(config)``):
# a session-scoped fixture's node is the session, not the test file whose conftest added the
# name. Which names a test file runs with is decided by generate_tests, per file.


def resolve_model(value: object, registry: EdgeRegistry) -> EdgeModel:
    """An :class:`EdgeModel` from a registered name, a ModelSpec or an EdgeModel."""
    if isinstance(value, EdgeModel):
        return value
    if isinstance(value, ModelSpec):
        module = build_seeded(value.builder, value.name, 0)
        return EdgeModel(value.name, module, tuple(value.input_shape), None)
    if isinstance(value, str):
        entry = registry.models.get(value)
        if entry is None:
            pytest.fail(f"edge_model: unknown model '{value}'; known models: "
                        f"{', '.join(registry.model_names())}", pytrace=False)
        return EdgeModel(value, entry.build(0), entry.input_shape, 0)
    pytest.fail(f"edge_model: cannot use {value!r} as a model: give a registered name, a "
                "ModelSpec or an EdgeModel", pytrace=False)


def resolve_strategy(value: object, registry: EdgeRegistry) -> Strategy:
    """A strategy object from a registered name, a strategy class or a strategy object."""

    def lookup(name: str) -> Strategy:
        entry = registry.strategies.get(name)
        if entry is None:
            pytest.fail(f"edge_strategy: unknown strategy '{name}'; known strategies: "
                        f"{', '.join(registry.strategy_names())}", pytrace=False)
        return entry.factory()

    try:
        return strategies.resolve_strategy(value, lookup)
    except PartitionError:
        pytest.fail(f"edge_strategy: cannot use {value!r} as a strategy: give a registered "
                    "name, a strategy class or an object with 'name', 'params' and "
                    "'plan(graph, cluster)'", pytrace=False)


def resolve_cluster(value: object, registry: EdgeRegistry) -> Cluster:
    """A cluster from a Cluster, a device count or a cluster spec (``"rpi4,jetson-tx2"``)."""
    if isinstance(value, Cluster):
        return value
    if isinstance(value, int | str):
        try:
            return as_cluster(value, registry.device_dirs)
        except EdgeEnergyError as exc:
            pytest.fail(f"edge_cluster: {value!r} is not a valid cluster: {exc}", pytrace=False)
    pytest.fail(f"edge_cluster: cannot use {value!r} as a cluster: give a Cluster, a device "
                "count or a spec such as 'rpi4,jetson-nano-10w'", pytrace=False)


@pytest.fixture(scope="session")
def edge_cluster(request: pytest.FixtureRequest) -> Cluster:
    """The cluster of this case (``--edge-devices``, ``--edge-device``, ``--edge-cluster``)."""
    edge = edge_session(request.config)
    if not hasattr(request, "param"):
        return edge.clusters[0]
    return resolve_cluster(request.param, edge.registry())


def _param(request: pytest.FixtureRequest,
           first: Callable[[EdgeSession, EdgeRegistry], list[str]]) -> tuple[object, EdgeRegistry]:
    """The fixture's parameter, or (not parametrised) the first name the run would use."""
    edge = edge_session(request.config)
    registry = edge.registry()
    value = getattr(request, "param", None)
    return (first(edge, registry)[0] if value is None else value), registry


@pytest.fixture(scope="session")
def edge_model(request: pytest.FixtureRequest) -> EdgeModel:
    """The model of this case, built once per session with seeded weights, in eval mode (an
    ``.onnx`` path: the file's model, at the input shape it declares)."""
    value, registry = _param(request, EdgeSession.model_names)
    if isinstance(value, str) and is_onnx_path(value):
        return onnx_edge_model(value, edge_session(request.config).onnx_model(value))
    return resolve_model(value, registry)


def onnx_edge_model(name: str, model: OnnxModel) -> EdgeModel:
    """An :class:`EdgeModel` of an ONNX file; its input shape is the one the file declares (a
    symbolic batch size is 1; another symbolic dimension fails the test)."""
    shape = list(model.input_shape)
    if shape and shape[0] is None:
        shape[0] = 1
    if len(shape) != 4 or any(d is None for d in shape):
        pytest.fail(f"edge_model: ONNX model '{name}' declares input shape {model.input_shape}; "
                    "a fixed (N, C, H, W) shape is needed", pytrace=False)
    return EdgeModel(name, model, tuple(int(d) for d in shape if d is not None), None)


@pytest.fixture(scope="session")
def edge_strategy(request: pytest.FixtureRequest) -> Strategy:
    """The partitioning strategy of this case (its ``name`` is what ids and reports show)."""
    return resolve_strategy(*_param(request, EdgeSession.strategy_names))


class EdgeRunner:
    """Runs one case: ``edge_run()`` in a test. See :meth:`__call__`."""

    def __init__(self, request: pytest.FixtureRequest, model: object, strategy: object,
                 cluster: object) -> None:
        self._request = request
        self._session: EdgeSession = edge_session(request.config)
        registry = self._session.registry()
        # Resolved again: a test may parametrise these directly (not indirectly).
        self.model = resolve_model(model, registry)
        self.strategy = resolve_strategy(strategy, registry)
        self.cluster = resolve_cluster(cluster, registry)

    def reference(self, x: Tensor) -> Tensor:
        """The unpartitioned model's output for ``x``, computed once per model object, weights
        and input."""
        references = self._session.references
        runs = references.runs
        out = references.output(self.model.module, x, self.model.name)
        self._session.reference_runs += references.runs - runs
        return out

    def _record_error(self, base: dict[str, Any], exc: Exception) -> CaseResult:
        """Record the case as an error (the report lists it) and return the record."""
        failed = CaseResult(**base, status=ERROR, message=f"{type(exc).__name__}: {exc}")
        self._session.collector.add(failed)
        record_case_properties(self._request.node, failed, "-")
        return failed

    def _sensitivity(self, pm: PartitionedModel, key: str) -> dict[str, Any]:
        """The case's figures under changed profiles, computed once per session."""
        cache = self._session.sensitivities
        if key not in cache:
            settings = self._session.settings
            cache[key] = case_sensitivity(
                pm.plan, self.cluster, settings.energy_model, settings.scenario,
                samples=settings.sensitivity_samples).to_dict()
        return cache[key]

    def _run(self, pm: PartitionedModel, x: Tensor, rounds: int | None) -> Tensor:
        if "benchmark" not in self._request.fixturenames:
            plain: Tensor = pm(x)
            return plain
        benchmark = self._request.getfixturevalue("benchmark")
        if rounds is None:
            out = benchmark(pm, x)
        else:
            out = benchmark.pedantic(pm, args=(x,), rounds=rounds, iterations=1)
        assert isinstance(out, Tensor)
        return out

    def _use_backend(self, pm: PartitionedModel, backend: str | None) -> None:
        """Run ``pm`` on ``backend`` (default: ``--edge-backend``); gloo through the session's
        worker pool."""
        gloo = self._request.config.stash.get(GLOO_KEY, None)
        name = backend or (gloo.settings.backend if gloo is not None else "local")
        if name not in BACKEND_NAMES:
            raise EdgeEnergyError(f"edge_run(backend={name!r}): unknown backend; valid "
                                  f"backends: {', '.join(BACKEND_NAMES)}")
        pm.backend = name
        if name == "gloo" and gloo is not None:
            pm.runner = gloo.pool.run

    def _timing(self, pm: PartitionedModel, key: str) -> dict[str, Any] | None:
        """Measured times next to the simulation's (gloo), and the trace saved if asked."""
        trace = pm.trace
        if not trace.timeline:
            return None
        gloo = self._request.config.stash.get(GLOO_KEY, None)
        if gloo is not None and gloo.settings.trace_dir is not None:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
            write_atomic(gloo.settings.trace_dir / f"{name}.trace.json", trace.to_json(indent=1))
        return compare_times(trace, pm.plan, self.cluster).to_dict()

    def __call__(self, *, input: Tensor | None = None, seed: int = 0, rounds: int | None = None,
                 tolerance: float = EQUIVALENCE_TOLERANCE,
                 backend: str | None = None) -> EdgeResult:
        """Partition, run, check equivalence, estimate energy, record; return the result.

        ``input`` defaults to :func:`make_input` of the model's input shape with ``seed``.
        When the test also requests pytest-benchmark's ``benchmark``, the partitioned
        inference runs under it (``rounds`` rounds, or pytest-benchmark's own calibration
        when ``None``) and the case's figures go to ``benchmark.extra_info["edgeenergy"]``.
        A partitioned output further than ``tolerance * max|reference|`` from the reference
        fails the test; the case is recorded (and reported) either way. ``backend`` (``local``
        or ``gloo``) overrides ``--edge-backend`` for this call.
        """
        settings = self._session.settings
        base: dict[str, Any] = {
            "model": self.model.name, "strategy": strategy_label(self.strategy),
            "strategy_params": dict(getattr(self.strategy, "params", {}) or {}),
            "cluster": self.cluster.signature, "input_shape": tuple(self.model.input_shape),
            "energy_model": settings.energy_model, "nodeid": self._request.node.nodeid,
            "scenario": str(settings.scenario),
        }
        collector = self._session.collector
        try:  # the arguments, named in the message (the case is recorded as an error)
            tolerance = as_tolerance(tolerance, "edge_run(tolerance=...)")
            x = (make_input(self.model.input_shape, as_seed(seed, "edge_run(seed=...)"))
                 if input is None else check_tensor_input(input, "edge_run(input=...)"))
        except EdgeEnergyError as exc:
            bad_argument: EdgeEnergyError | None = exc
        else:
            bad_argument = None
            base["input_shape"] = tuple(x.shape)
        if bad_argument is not None:  # outside the except: no chained traceback
            failed = self._record_error(base, bad_argument)
            pytest.fail(f"{failed.key}: {bad_argument}", pytrace=False)
        try:
            reference = self.reference(x)
            planner = for_run(self.strategy, settings.energy_model, settings.scenario)
            pm = partition(self.model.module, planner, self.cluster, tuple(x.shape))
            self._use_backend(pm, backend)
            output = self._run(pm, x, rounds)
            estimate = estimate_energy(pm, model=settings.energy_model,
                                       scenario=settings.scenario)
            energy = CaseEnergy.from_estimate(estimate, pm.plan, self.cluster)
            non_finite = first_non_finite(energy.to_dict())
            if non_finite is not None:
                raise EdgeEnergyError(f"the energy estimate is not finite: {non_finite}; check "
                                      f"the figures of the cluster's profiles "
                                      f"({self.cluster.signature})")
            sensitivity = None
            if settings.sensitivity:  # ranked per group by the report (on the controller)
                sensitivity = self._sensitivity(pm, case_key(
                    base["model"], base["strategy"], base["cluster"], base["input_shape"],
                    base["energy_model"]))
        except Exception as exc:
            self._record_error(base, exc)
            raise
        max_error, atol, problem = _compare(output, reference, tolerance)
        if problem is None and pm.plan.device_stats() != pm.trace.device_stats():
            problem = ("the backend's trace differs from the plan's counts: plan "
                       f"{pm.plan.device_stats()}, trace {pm.trace.device_stats()}")
        case = CaseResult(**base, status=PASSED if problem is None else NOT_EQUIVALENT,
                          message=problem or "", max_abs_error=max_error, tolerance=atol,
                          energy=energy, sensitivity=sensitivity,
                          explanation="\n".join(pm.plan.plan_notes().values()),
                          timing=self._timing(pm, case_key(
                              base["model"], base["strategy"], base["cluster"],
                              base["input_shape"], base["energy_model"])))
        collector.add(case)
        if "benchmark" in self._request.fixturenames:
            extra = self._request.getfixturevalue("benchmark").extra_info
            extra["edgeenergy"] = case.to_dict()
        # Against the committed baseline: a regression fails this test (the session's summary
        # and the update of the file happen at the end, on the controller).
        profile_paths = {p.name: p.path for p in self.cluster if p.path}
        status, regression = check_case(case, profile_paths, self._session.baseline,
                                        settings.fail_on, settings.strict,
                                        self._request.config.rootpath)
        record_case_properties(self._request.node, case, status)
        if problem is not None:
            pytest.fail(f"{case.key}: {problem}", pytrace=False)
        measured = self._measure(case, pm, x, estimate)
        by_rank = self._measure_ranks(case, pm, x, estimate)
        if regression is not None and not settings.update_baseline:
            pytest.fail(regression, pytrace=False)
        return EdgeResult(output, pm.trace, estimate, reference, pm.plan, pm, case, measured,
                          by_rank)

    def _measure(self, case: CaseResult, pm: PartitionedModel, x: Tensor,
                 estimate: EnergyEstimate) -> MeasuredRow | None:
        """With a working ``--edge-meter``: measure the partitioned inference (local backend:
        this whole machine, beside the sum of the devices' estimates)."""
        if pm.backend != "local":  # gloo: each rank measures its own share (_measure_ranks)
            return None
        devices = [(d.compute_j, d.comm_j) for d in estimate.devices]
        try:
            with torch.no_grad():
                return self._session.metering.measure_local(case.key, lambda: pm(x), devices)
        except MeterError as exc:
            pytest.fail(f"{case.key}: the meter failed while measuring: {exc}", pytrace=False)

    def _measure_ranks(self, case: CaseResult, pm: PartitionedModel, x: Tensor,
                       estimate: EnergyEstimate) -> tuple[MeasuredRow, ...]:
        """With ``--edge-meter`` on the gloo backend: every rank measures its own share on
        its own machine, beside its own device's estimate."""
        gloo = self._request.config.stash.get(GLOO_KEY, None)
        metering = self._session.metering
        if pm.backend != "gloo" or gloo is None or pm.runner is None or metering.spec is None:
            return ()
        devices = [(d.compute_j, d.comm_j) for d in estimate.devices]
        spec, graph = metering.spec, pm.graph
        try:
            return tuple(metering.measure_ranks(
                case.key, lambda: gloo.pool.measure(pm.plan, graph, x, spec, metering.rule),
                devices))
        except EdgeEnergyError as exc:
            pytest.fail(f"{case.key}: measuring the ranks' shares with meter {spec!r} failed: "
                        f"{exc}", pytrace=False)


def _compare(output: Tensor, reference: Tensor,
             tolerance: float) -> tuple[float | None, float, str | None]:
    """(max abs error, the absolute tolerance used, the failure message or None)."""
    result = check_equivalence(output, reference, tolerance)
    return result.max_abs_error, result.atol, result.problem


@pytest.fixture(scope="session")
def edge_meter(request: pytest.FixtureRequest) -> Meter:
    """The power meter of ``--edge-meter``; a test that asks for it skips, with the reason,
    when no meter was named or it cannot measure on this machine."""
    metering = edge_session(request.config).metering
    skip = metering.skip_reason
    if skip is not None or metering.meter is None:
        pytest.skip(skip or "no meter")
    return metering.meter


@pytest.fixture
def edge_run(request: pytest.FixtureRequest, edge_model: EdgeModel, edge_strategy: Strategy,
             edge_cluster: Cluster) -> EdgeRunner:
    """Call it to run this case: ``output, trace, energy = edge_run()``; see EdgeRunner."""
    return EdgeRunner(request, edge_model, edge_strategy, edge_cluster)


def _user_parametrized(metafunc: pytest.Metafunc, argname: str) -> bool:
    """Whether the test parametrises ``argname`` itself, with a parametrize mark."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if argname in names:
            return True
    return False


def generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise the plugin's fixtures a test uses (and does not parametrise itself)."""
    wanted = [a for a in EDGE_ARGNAMES
              if a in metafunc.fixturenames and not _user_parametrized(metafunc, a)]
    if not wanted:
        return
    edge = edge_session(metafunc.config)
    registry = edge.registry(metafunc.definition)
    if "edge_model" in wanted:
        # Unknown names are left out here and reported as a usage error after collection,
        # when every conftest has had its chance to register them.
        models = [m for m in edge.model_names(registry)
                  if m in registry.models or is_onnx_path(m)]
        metafunc.parametrize("edge_model", models, ids=models, indirect=True)
    if "edge_strategy" in wanted:
        strategies = [s for s in edge.strategy_names(registry) if s in registry.strategies]
        metafunc.parametrize("edge_strategy", strategies, ids=strategies, indirect=True)
    if "edge_cluster" in wanted:
        metafunc.parametrize("edge_cluster", list(edge.clusters),
                             ids=[c.signature for c in edge.clusters], indirect=True)
