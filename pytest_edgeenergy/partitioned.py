"""``partition()``: a model, a strategy and a cluster in, a runnable partitioned model out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .backends import Backend, get_backend
from .backends.local import run_local
from .checks import check_tensor_input
from .cluster import Cluster, as_cluster
from .errors import PartitionError
from .graph.build import build_graph
from .graph.layergraph import Layer, LayerGraph
from .graph.onnx_import import load_model_file
from .plan import Plan
from .strategies.protocol import Strategy
from .strategies.registry import get_strategy, resolve_strategy
from .trace import Trace
from .weightwatch import WeightWatch

#: Layers whose training-mode behaviour differs from inference (batch statistics, dropout).
_MODE_SENSITIVE = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


class PartitionedModel(nn.Module):
    """A model split over a cluster. Calling it runs the partitioned inference.

    ``plan`` is what will run; ``trace`` what the last call measured; ``graph`` the layer graph
    the plan was made from (weights are the model's own tensors, or one folded copy of a conv
    whose BatchNorm was folded into it); ``backend`` the backend that runs it (``local`` or
    ``gloo``; it may be changed between calls).

    Given the ``model`` it was made from, it follows that model's weights: when they changed
    since (``load_state_dict``, an in-place edit, a replaced parameter, a layer setting), the
    graph is derived again before the next call, so the output is always the current model's.
    A change of the model's structure that the plan no longer fits is refused with a
    :class:`PartitionError`: partition the model again.
    """

    def __init__(self, graph: LayerGraph, plan: Plan, cluster: Cluster, strategy: Strategy,
                 backend: str = "local", model: nn.Module | None = None) -> None:
        super().__init__()
        self._graph = graph
        self.plan = plan
        self.cluster = cluster
        self.strategy = strategy
        self.backend = backend
        self._trace: Trace | None = None
        self._prepared: dict[int, object] = {}
        #: When set, runs the plan on the gloo backend instead of starting processes for each
        #: call: a started :class:`~pytest_edgeenergy.backends.pool.WorkerPool`'s ``run``.
        self.runner: Backend | None = None
        #: On the local backend, run the devices at the same time (the default) or, when False,
        #: the steps in turn with all of torch's threads on each (see ``run_local``).
        self.parallel = True
        self._watch = None if model is None else WeightWatch(model, held_tensors(graph))

    @property
    def graph(self) -> LayerGraph:
        """The layer graph that runs: derived again first if the model's weights changed."""
        self._follow_model()
        return self._graph

    @property
    def backend(self) -> str:
        """The name of the backend that runs the plan; setting an unknown one is an error."""
        return self._backend

    @backend.setter
    def backend(self, name: str) -> None:
        get_backend(name)
        self._backend = name

    @property
    def trace(self) -> Trace:
        """The trace of the last run (an error before the first run)."""
        if self._trace is None:
            raise PartitionError("the partitioned model has not run yet: call it on an input first")
        return self._trace

    def forward(self, x: Tensor) -> Tensor:
        """Run the partitioned inference on the selected backend; device 0 ends with the
        output."""
        check_tensor_input(x)
        graph = self.graph
        if self.backend == "local":  # keeps its per-step preparation between calls
            out, self._trace = run_local(self.plan, graph, x, self._prepared,
                                         parallel=self.parallel)
        elif self.runner is not None and self.backend == "gloo":
            out, self._trace = self.runner(self.plan, graph, x)
        else:
            out, self._trace = get_backend(self.backend)(self.plan, graph, x)
        return out

    def _follow_model(self) -> None:
        """Derive the graph again from the model when its weights changed since the last time."""
        watch = self._watch
        if watch is None or not watch.changed():
            return
        model, name = watch.model, self.strategy.name
        where = f"model {type(model).__name__} changed since it was partitioned"
        try:
            check_model(model, name)
            graph = _graph_of(model, self.plan.input_shape, name)
        except PartitionError as exc:
            raise PartitionError(f"{where}, and now: {exc}") from None
        difference = structure_difference(self._graph, graph)
        if difference is not None:
            raise PartitionError(f"{where} in a way the plan does not fit ({difference}): call "
                                 f"partition() again (strategy '{name}')")
        self._graph, self._prepared = graph, {}
        self._watch = WeightWatch(model, held_tensors(graph))

    def extra_repr(self) -> str:
        return (f"strategy={self.plan.strategy}, devices={self.plan.n_devices}, "
                f"input={tuple(self.plan.input_shape)}")


def _graph_of(model: nn.Module, input_shape: Sequence[int], strategy: str) -> LayerGraph:
    """The model's layer graph; an error names the strategy it was built for."""
    try:
        return build_graph(model, input_shape)
    except PartitionError as exc:
        raise PartitionError(f"{exc} (strategy '{strategy}')") from exc


def check_model(model: nn.Module, strategy: str) -> None:
    """Refuse a model that cannot run partitioned: not an ``nn.Module``, a layer in training
    mode, or a floating-point parameter or buffer that is not float32 on the CPU."""
    if not isinstance(model, nn.Module):
        raise PartitionError(f"model must be a torch.nn.Module, got {type(model).__name__} "
                             f"(strategy '{strategy}')")
    training = [name for name, m in model.named_modules()
                if m.training and isinstance(m, _MODE_SENSITIVE)]
    if training:
        raise PartitionError(
            f"model {type(model).__name__} is in training mode: layer '{training[0]}' "
            f"({type(model.get_submodule(training[0])).__name__}) behaves differently in "
            f"training, and a partitioned model runs inference: call model.eval() first "
            f"(strategy '{strategy}')")
    tensors: list[tuple[str, str, Tensor]] = [
        ("parameter", n, t) for n, t in model.named_parameters()]
    tensors += [("buffer", n, t) for n, t in model.named_buffers() if t is not None]
    for kind, name, t in tensors:
        if kind == "buffer" and not (t.is_floating_point() or t.is_complex()):
            continue  # counters such as BatchNorm's num_batches_tracked
        if t.dtype != torch.float32:
            raise PartitionError(f"{kind} '{name}' has dtype {t.dtype}; only float32 models "
                                 f"are supported: call model.float() (strategy '{strategy}')")
        if t.device.type != "cpu":
            raise PartitionError(f"{kind} '{name}' is on device '{t.device}'; the partitioned "
                                 f"inference runs on the CPU: load real weights and call "
                                 f"model.to('cpu') (strategy '{strategy}')")


def held_tensors(graph: LayerGraph) -> list[Tensor]:
    """Every tensor the graph's layers hold (weights, biases, folded scales)."""
    found: list[Tensor] = []
    for layer in graph.layers:
        for value in getattr(layer.op, "__dict__", {}).values():
            items = value if isinstance(value, list | tuple) else (value,)
            found.extend(v for v in items if isinstance(v, Tensor))
    return found


def _setting(value: object) -> object:
    """A comparable form of an op attribute: a tensor by its shape and dtype only."""
    if isinstance(value, Tensor):
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, list | tuple):
        return tuple(_setting(v) for v in value)
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return type(value).__name__


def _layer_structure(layer: Layer) -> tuple[object, ...]:
    """A layer without its tensors' values: what the plan was made from."""
    settings = sorted((key, repr(_setting(v)))
                      for key, v in getattr(layer.op, "__dict__", {}).items())
    return (layer.name, layer.inputs, layer.post, type(layer.op), tuple(settings))


def structure_difference(old: LayerGraph, new: LayerGraph) -> str | None:
    """None when the graphs differ only in tensor values, else the first difference."""
    if (old.input_name, old.input_shape, old.output) != (new.input_name, new.input_shape,
                                                          new.output):
        return f"input or output changed: was {old.output}, now {new.output}"
    for before, after in zip(old.layers, new.layers, strict=False):
        if _layer_structure(before) != _layer_structure(after):
            return (f"layer '{before.name}' was {before.describe()}, now '{after.name}' is "
                    f"{after.describe()}")
    if len(old.layers) != len(new.layers):
        return f"{len(old.layers)} layers before, {len(new.layers)} now"
    return None


def partition(model: nn.Module | str | os.PathLike[str], strategy: str | Strategy,
              cluster: int | Cluster,
              input_shape: Sequence[int], *, backend: str = "local",
              **strategy_params: Any) -> PartitionedModel:
    """Partition ``model`` with ``strategy`` over ``cluster`` for inputs of ``input_shape``.

    ``model`` is a module, or the path of an ``.onnx`` file (needs the ``onnx`` extra).
    ``cluster`` is a device count (that many identical default devices) or a :class:`Cluster`.
    ``strategy`` is a registered name (parameters as keyword arguments) or a strategy object.
    The keyword ``backend`` names what runs the plan when the model is called: ``local`` (the
    default: every device in this process) or ``gloo`` (one process per device,
    torch.distributed on 127.0.0.1, started for each call; to keep the processes across calls
    use ``run_gloo(pm.plan, pm.graph, x, workers=...)`` with a
    :class:`~pytest_edgeenergy.backends.GlooWorkers`).
    Nothing real is computed: the graph is traced on meta tensors and the plan is pure data.
    """
    get_backend(backend)
    if strategy_params:
        if not isinstance(strategy, str):
            raise PartitionError("strategy parameters go with a strategy name, not an object")
        strat = get_strategy(strategy, **strategy_params)
    else:
        strat = resolve_strategy(strategy)
    devices = as_cluster(cluster)
    if isinstance(model, str | os.PathLike):
        try:
            model = load_model_file(model)
        except PartitionError as exc:
            raise PartitionError(f"{exc} (strategy '{strat.name}')") from exc
    check_model(model, strat.name)
    graph = _graph_of(model, input_shape, strat.name)
    plan = strat.plan(graph, devices)
    return PartitionedModel(graph, plan, devices, strat, backend, model)
