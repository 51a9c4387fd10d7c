"""``partition()``: a model, a strategy and a cluster in, a runnable partitioned model out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .backends import get_backend
from .backends.local import run_local
from .cluster import Cluster, as_cluster
from .errors import PartitionError
from .graph.build import build_graph
from .graph.layergraph import LayerGraph
from .graph.onnx_import import load_model_file
from .plan import Plan
from .strategies.protocol import Strategy
from .strategies.registry import get_strategy, resolve_strategy
from .trace import Trace

#: Layers whose training-mode behaviour differs from inference (batch statistics, dropout).
_MODE_SENSITIVE = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


class PartitionedModel(nn.Module):
    """A model split over a cluster. Calling it runs the partitioned inference.

    ``plan`` is what will run; ``trace`` what the last call measured; ``graph`` the layer graph
    the plan was made from (weights are the model's own tensors, or one folded copy of a conv
    whose BatchNorm was folded into it); ``backend`` the backend that runs it (``local`` or
    ``gloo``; it may be changed between calls).
    """

    def __init__(self, graph: LayerGraph, plan: Plan, cluster: Cluster, strategy: Strategy,
                 backend: str = "local") -> None:
        super().__init__()
        self.graph = graph
        self.plan = plan
        self.cluster = cluster
        self.strategy = strategy
        self.backend = backend
        self._trace: Trace | None = None
        self._prepared: dict[int, object] = {}

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
        if self.backend == "local":  # keeps its per-step preparation between calls
            out, self._trace = run_local(self.plan, self.graph, x, self._prepared)
        else:
            out, self._trace = get_backend(self.backend)(self.plan, self.graph, x)
        return out

    def extra_repr(self) -> str:
        return (f"strategy={self.plan.strategy}, devices={self.plan.n_devices}, "
                f"input={tuple(self.plan.input_shape)}")


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
    if not isinstance(model, nn.Module):
        try:
            model = load_model_file(model)
        except PartitionError as exc:
            raise PartitionError(f"{exc} (strategy '{strat.name}')") from exc
    training = [name for name, m in model.named_modules()
                if m.training and isinstance(m, _MODE_SENSITIVE)]
    if training:
        raise PartitionError(
            f"model {type(model).__name__} is in training mode: layer '{training[0]}' "
            f"({type(model.get_submodule(training[0])).__name__}) behaves differently in "
            f"training, and a partitioned model runs inference: call model.eval() first "
            f"(strategy '{strat.name}')")
    for name, p in model.named_parameters():
        if p.dtype != torch.float32:
            raise PartitionError(f"parameter '{name}' has dtype {p.dtype}; only float32 models "
                                 f"are supported (strategy '{strat.name}')")
    try:
        graph = build_graph(model, input_shape)
    except PartitionError as exc:
        raise PartitionError(f"{exc} (strategy '{strat.name}')") from exc
    plan = strat.plan(graph, devices)
    return PartitionedModel(graph, plan, devices, strat, backend)
