"""A session's gloo workers: started once per cluster size, reused by every run.

:class:`WorkerPool` starts the workers of a device count the first time a plan of that size
runs (``spawn``: one process per device on 127.0.0.1, :class:`~.gloo.GlooWorkers`; ``env``:
rank 0 in this process and the worker ranks on other hosts, :class:`~.remote.RemoteWorkers`)
and keeps them for every later run; each layer graph is shipped to them once. After a failure
the broken workers are replaced on the next run, so one failed case does not fail the next.
:attr:`WorkerPool.startups` records what each start cost, to be reported once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor

from ..errors import PartitionError
from ..graph.layergraph import LayerGraph
from ..meters.measure import StopRule
from ..meters.ranks import ShareMeasurement
from ..plan import Plan
from ..trace import Trace
from .gloo import GlooWorkers
from .remote import RemoteWorkers
from .rendezvous import Rendezvous

__all__ = ["INIT_METHODS", "GlooConfig", "PoolStart", "WorkerPool"]

#: How the worker ranks are started: here (``spawn``) or on other hosts (``env``).
INIT_METHODS = ("spawn", "env")


class _Workers(Protocol):
    @property
    def alive(self) -> bool: ...

    def run(self, plan: Plan, graph: LayerGraph, x: Tensor, *,
            timeout_s: float | None = None) -> tuple[Tensor, Trace]: ...

    def measure(self, plan: Plan, graph: LayerGraph, x: Tensor, spec: str,
                rule: StopRule | None = None, *,
                timeout_s: float | None = None) -> list[ShareMeasurement]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GlooConfig:
    """How the pool starts workers: ``init`` (``spawn`` or ``env``), the run and join
    (start-up) timeouts, the port (``spawn``: rank 0's rendezvous port on 127.0.0.1, default
    a free one; ``env``: ``MASTER_PORT`` unless given) and the network interface (``env``)."""

    init: str = "spawn"
    timeout_s: float = 120.0
    join_timeout_s: float = 60.0
    port: int | None = None
    ifname: str | None = None


@dataclass(frozen=True, slots=True)
class PoolStart:
    """One start of the workers of a cluster size: how long it took."""

    n_devices: int
    init: str
    seconds: float


@dataclass
class WorkerPool:
    """Workers per cluster size for a whole session (see the module docstring)."""

    config: GlooConfig = field(default_factory=GlooConfig)
    startups: list[PoolStart] = field(default_factory=list)
    _workers: dict[int, _Workers] = field(default_factory=dict)

    def workers(self, n_devices: int) -> _Workers:
        """The started workers for ``n_devices`` (started now if missing or broken)."""
        current = self._workers.get(n_devices)
        if current is not None and current.alive:
            return current
        if current is not None:
            current.close()
        cfg = self.config
        t0 = time.perf_counter()
        started: _Workers
        if cfg.init == "spawn":
            # Start-up (processes spawned, torch imported) is bounded by the join timeout.
            started = GlooWorkers(n_devices, timeout_s=max(cfg.timeout_s, cfg.join_timeout_s),
                                  port=cfg.port)
        elif cfg.init == "env":
            others = [n for n in self._workers if n != n_devices]
            if others:
                raise PartitionError(f"the env:// cluster has {others[0]} devices (WORLD_SIZE); "
                                     f"a plan for {n_devices} cannot run on it")
            rv = Rendezvous.from_env(None, port=cfg.port, ifname=cfg.ifname,
                                     join_timeout_s=cfg.join_timeout_s, timeout_s=cfg.timeout_s)
            if rv.world_size != n_devices:
                raise PartitionError(f"a plan for {n_devices} devices cannot run on the env:// "
                                     f"cluster of WORLD_SIZE={rv.world_size}")
            remote = RemoteWorkers(rv)
            self._workers[n_devices] = remote
            remote.connect()
            started = remote
        else:
            raise PartitionError(f"unknown gloo init method {cfg.init!r}; known: "
                                 f"{', '.join(INIT_METHODS)}")
        self._workers[n_devices] = started
        self.startups.append(PoolStart(n_devices, cfg.init, time.perf_counter() - t0))
        return started

    def pids(self, n_devices: int) -> list[int]:
        """The worker processes of the ``spawn`` workers for ``n_devices`` (none: [])."""
        workers = self._workers.get(n_devices)
        return list(workers.pids) if isinstance(workers, GlooWorkers) else []

    def run(self, plan: Plan, graph: LayerGraph, x: Tensor) -> tuple[Tensor, Trace]:
        """Run ``plan`` on the workers of its size; the same contract as a backend."""
        return self.workers(plan.n_devices).run(plan, graph, x, timeout_s=self.config.timeout_s)

    def measure(self, plan: Plan, graph: LayerGraph, x: Tensor, spec: str,
                rule: StopRule | None = None) -> list[ShareMeasurement]:
        """Have the workers of the plan's size measure their shares with the meter ``spec``
        names, each on its own machine (``--edge-meter``); one per device."""
        return self.workers(plan.n_devices).measure(plan, graph, x, spec, rule,
                                                    timeout_s=self.config.timeout_s)

    def close(self) -> None:
        """Stop every worker process this pool started."""
        for workers in self._workers.values():
            workers.close()
        self._workers.clear()
