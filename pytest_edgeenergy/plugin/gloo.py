"""The gloo backend from pytest: its options, the session's worker pool, and its report.

``--edge-backend=gloo`` runs every ``edge_run`` case with one process per device. The workers
of each cluster size are started once per session (per pytest-xdist worker: each owns its pool
and picks its own free ports) by a :class:`~pytest_edgeenergy.backends.pool.WorkerPool` and
reused by every case; they stop when the session ends. ``--edge-gloo-init=env`` makes this
process rank 0 of a cluster whose other ranks run ``python -m pytest_edgeenergy worker`` on
other hosts (docs/distributed.md). What the start-ups cost is reported once, at the end.

Everything here is one plugin object, :class:`GlooSession`, registered by the main plugin's
``pytest_configure``; the options are in :mod:`.options` (``--edge-backend``,
``--edge-gloo-*``, ``--edge-trace-dir``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from ..backends.pool import GlooConfig, PoolStart, WorkerPool
from .session import edge_session

__all__ = ["GLOO_KEY", "GlooSession"]

GLOO_OUTPUT_KEY = "pytest_edgeenergy_gloo_startups"
"""The key of an xdist worker's pool start-ups in ``workeroutput``."""


GLOO_KEY = pytest.StashKey["GlooSession"]()
"""Where the session's :class:`GlooSession` lives."""


class GlooSession:
    """The session's backend settings and worker pool (a plugin object: its hooks close the
    pool at the end and report the start-ups once)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = settings = edge_session(config).settings
        if settings.gloo_init == "env" and _xdist_workers(config) > 1:
            raise pytest.UsageError(
                f"{settings.source('edge_gloo_init').option}='env' cannot be used by several "
                "pytest-xdist workers at once: one process is rank 0 of the cluster; run "
                "without -n, or with -n 1")
        self.pool = WorkerPool(GlooConfig(settings.gloo_init, settings.gloo_timeout_s,
                                          settings.gloo_join_timeout_s, settings.gloo_port,
                                          settings.gloo_ifname))
        self.reported: list[dict[str, Any]] = []  # start-ups of xdist workers' pools

    def runner(self) -> Callable[..., Any] | None:
        """What runs a case's plan: the pool (gloo), or None (the local backend)."""
        return self.pool.run if self.settings.backend == "gloo" else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Stop the workers; on an xdist worker, hand the start-ups to the controller."""
        self.pool.close()
        if hasattr(self.config, "workeroutput"):
            self.config.workeroutput[GLOO_OUTPUT_KEY] = json.dumps(
                [_start_dict(s, os.getpid()) for s in self.pool.startups])

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller: collect a worker's pool start-ups."""
        text = getattr(node, "workeroutput", {}).get(GLOO_OUTPUT_KEY)
        if text:
            self.reported += json.loads(text)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Report what starting the workers cost, once per pool start."""
        if hasattr(self.config, "workerinput"):
            return
        starts = [_start_dict(s, os.getpid()) for s in self.pool.startups] + self.reported
        if not starts:
            return
        terminalreporter.section("edge gloo workers")
        for s in starts:
            terminalreporter.write_line(
                f"{s['n_devices']} devices ({s['init']}) started in {s['seconds']:.2f} s in "
                f"process {s['pid']}, once for every case of that size")


def _xdist_workers(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput.get("workercount", 1)) if workerinput else 1


def _start_dict(start: PoolStart, pid: int) -> dict[str, Any]:
    return {"n_devices": start.n_devices, "init": start.init, "seconds": start.seconds,
            "pid": pid}
