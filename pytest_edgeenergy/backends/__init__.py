"""Backends interpret a plan: ``local`` runs every device in this process, ``gloo`` runs one
process per device and moves transfers over ``torch.distributed`` on 127.0.0.1.

A backend is a function ``(plan, graph, x) -> (output, trace)``; :func:`get_backend` finds one
by name.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..errors import PartitionError
from ..graph.layergraph import LayerGraph
from ..plan import Plan
from ..trace import Trace
from .gloo import GlooWorkers, run_gloo
from .local import run_local

#: What a backend is: the plan, its layer graph and the input in; device 0's output and the
#: measured trace out.
Backend = Callable[[Plan, LayerGraph, Tensor], tuple[Tensor, Trace]]

BACKENDS: dict[str, Backend] = {"local": run_local, "gloo": run_gloo}


def list_backends() -> list[str]:
    """The backend names, in the order they are documented."""
    return list(BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a :class:`PartitionError` listing the known ones if none."""
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise PartitionError(f"unknown backend {name!r}; known backends: "
                             f"{', '.join(BACKENDS)}") from None


__all__ = ["BACKENDS", "Backend", "GlooWorkers", "get_backend", "list_backends", "run_gloo",
           "run_local"]
