"""Fixtures and parametrisation: one test case per model x strategy x cluster.

``edge_model``, ``edge_strategy`` and ``edge_cluster`` are session-scoped fixtures that
:func:`generate_tests` parametrises from the registries and options, with readable ids such
as ``resnet18-output-channel-4xrpi4``. A test parametrises one of them itself with
``@pytest.mark.parametrize("edge_strategy", [MyStrategy()], indirect=True)``; the plugin then
leaves that one alone. ``edge_run`` runs one case; see :class:`EdgeRunner`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from .. import strategies
from ..cluster import Cluster, as_cluster
from ..energy import EnergyEstimate, estimate_energy
from ..errors import EdgeEnergyError, PartitionError
from ..meters import Meter, MeterError
from ..meters.compare import MeasuredRow
from ..partitioned import PartitionedModel, partition
from ..plan import Plan
from ..records.results import ERROR, NOT_EQUIVALENT, PASSED, CaseEnergy, CaseResult
from ..records.tracking import check_case
from ..strategies.protocol import Strategy
from ..trace import Trace
from ..zoo import ModelSpec
from .ci import record_case_properties
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

EQUIVALENCE_TOLERANCE = 1e-5
"""How far the partitioned output may be from the reference, relative to its largest value.

The check is ``torch.testing.assert_close(out, ref, rtol=0, atol=1e-5 * max|ref|)``: about
84 float32 ulps at the reference's largest magnitude. A partitioned inference sums the same
products in another order (partial sums, reductions, tiles), which moves the last bits; the
zoo's models land between 1e-7 and 2e-6 of max|ref| on every strategy, so 1e-5 leaves a
margin of five while still catching any misplaced row, channel or halo (those err by O(1)).
"""

@dataclasses.dataclass(frozen=True)
class EdgeModel:
    """A model to partition: a name, the module (eval mode) and its input shape (N, C, H, W).

    ``seed`` is the weight seed of a model built from a registry; ``None`` for a module the
    user built, whose reference output is then cached per object, not per name.
    """

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    seed: int | None = 0

    @property
    def cache_key(self) -> tuple[object, ...]:
        """What identifies this model's weights within a session."""
        if self.seed is None:
            return ("object", self.name, id(self.module))
        return ("registry", self.name, self.seed)


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
    measured: MeasuredRow | None = None  # with --edge-meter: the measured energy

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
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = value.builder()
        return EdgeModel(value.name, module.eval(), tuple(value.input_shape), None)
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
    """The model of this case, built once per session with seeded weights, in eval mode."""
    return resolve_model(*_param(request, EdgeSession.model_names))


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
        """The unpartitioned model's output for ``x``, computed once per model and input."""
        digest = hashlib.sha256(x.detach().contiguous().numpy().tobytes()).hexdigest()
        key = (*self.model.cache_key, tuple(x.shape), digest)
        cached = self._session.references.get(key)
        if cached is None:
            with torch.no_grad():
                out = self.model.module(x)
            if not isinstance(out, Tensor):
                raise EdgeEnergyError(f"model '{self.model.name}' returned "
                                      f"{type(out).__name__}, not a single tensor")
            self._session.references[key] = cached = out
            self._session.reference_runs += 1
        return cached

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

    def __call__(self, *, input: Tensor | None = None, seed: int = 0, rounds: int | None = None,
                 tolerance: float = EQUIVALENCE_TOLERANCE) -> EdgeResult:
        """Partition, run, check equivalence, estimate energy, record; return the result.

        ``input`` defaults to :func:`make_input` of the model's input shape with ``seed``.
        When the test also requests pytest-benchmark's ``benchmark``, the partitioned
        inference runs under it (``rounds`` rounds, or pytest-benchmark's own calibration
        when ``None``) and the case's figures go to ``benchmark.extra_info["edgeenergy"]``.
        A partitioned output further than ``tolerance * max|reference|`` from the reference
        fails the test; the case is recorded (and reported) either way.
        """
        x = make_input(self.model.input_shape, seed) if input is None else input
        settings = self._session.settings
        base: dict[str, Any] = {
            "model": self.model.name, "strategy": strategy_label(self.strategy),
            "strategy_params": dict(getattr(self.strategy, "params", {}) or {}),
            "cluster": self.cluster.signature, "input_shape": tuple(x.shape),
            "energy_model": settings.energy_model, "nodeid": self._request.node.nodeid,
        }
        collector = self._session.collector
        try:
            reference = self.reference(x)
            pm = partition(self.model.module, self.strategy, self.cluster, tuple(x.shape))
            output = self._run(pm, x, rounds)
            estimate = estimate_energy(pm, model=settings.energy_model)
            energy = CaseEnergy.from_estimate(estimate, pm.plan, self.cluster)
        except Exception as exc:
            failed = CaseResult(**base, status=ERROR, message=f"{type(exc).__name__}: {exc}")
            collector.add(failed)
            record_case_properties(self._request.node, failed, "-")
            raise
        max_error, atol, problem = _compare(output, reference, tolerance)
        if problem is None and pm.plan.device_stats() != pm.trace.device_stats():
            problem = ("the backend's trace differs from the plan's counts: plan "
                       f"{pm.plan.device_stats()}, trace {pm.trace.device_stats()}")
        case = CaseResult(**base, status=PASSED if problem is None else NOT_EQUIVALENT,
                          message=problem or "", max_abs_error=max_error, tolerance=atol,
                          energy=energy)
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
        if regression is not None and not settings.update_baseline:
            pytest.fail(regression, pytrace=False)
        return EdgeResult(output, pm.trace, estimate, reference, pm.plan, pm, case, measured)

    def _measure(self, case: CaseResult, pm: PartitionedModel, x: Tensor,
                 estimate: EnergyEstimate) -> MeasuredRow | None:
        """With a working ``--edge-meter``: measure the partitioned inference (local backend:
        this whole machine, beside the sum of the devices' estimates)."""
        if pm.backend != "local":  # per-rank metering under gloo is not built
            return None
        devices = [(d.compute_j, d.comm_j) for d in estimate.devices]
        try:
            with torch.no_grad():
                return self._session.metering.measure_local(case.key, lambda: pm(x), devices)
        except MeterError as exc:
            pytest.fail(f"{case.key}: the meter failed while measuring: {exc}", pytrace=False)


def _compare(output: Tensor, reference: Tensor,
             tolerance: float) -> tuple[float | None, float, str | None]:
    """(max abs error, the absolute tolerance used, the failure message or None)."""
    scale = float(reference.detach().abs().max()) if reference.numel() else 0.0
    atol = tolerance * scale
    max_error: float | None = None
    if output.shape == reference.shape:
        max_error = float((output.detach() - reference.detach()).abs().max())
        if not math.isfinite(max_error):
            max_error = None
    try:
        torch.testing.assert_close(output, reference, rtol=0.0, atol=atol)
    except AssertionError as exc:
        detail = " ".join(str(exc).split())
        return max_error, atol, (f"partitioned output differs from the unpartitioned model "
                                 f"beyond {tolerance:g} x max|reference| = {atol:.3g}: {detail}")
    return max_error, atol, None


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
        models = [m for m in edge.model_names(registry) if m in registry.models]
        metafunc.parametrize("edge_model", models, ids=models, indirect=True)
    if "edge_strategy" in wanted:
        strategies = [s for s in edge.strategy_names(registry) if s in registry.strategies]
        metafunc.parametrize("edge_strategy", strategies, ids=strategies, indirect=True)
    if "edge_cluster" in wanted:
        metafunc.parametrize("edge_cluster", list(edge.clusters),
                             ids=[c.signature for c in edge.clusters], indirect=True)
