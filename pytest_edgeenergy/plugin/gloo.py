"""The gloo backend from pytest: its options, the session's worker pool, and its report.

``--edge-backend=gloo`` runs every ``edge_run`` case with one process per device. The workers
of each cluster size are started once per session (per pytest-xdist worker: each owns its pool
and picks its own free ports) by a :class:`~pytest_edgeenergy.backends.pool.WorkerPool` and
reused by every case; they stop when the session ends. ``--edge-gloo-init=env`` makes this
process rank 0 of a cluster whose other ranks run ``python -m pytest_edgeenergy worker`` on
other hosts (docs/distributed.md). What the start-ups cost is reported once, at the end.

Everything here is one plugin object, :class:`GlooSession`, registered by the main plugin's
``pytest_configure``; options are added by :func:`add_gloo_options`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..backends.pool import INIT_METHODS, GlooConfig, PoolStart, WorkerPool
from .options import GROUP, Source, _error, _paths, _raw, _text

__all__ = ["BACKEND_NAMES", "GLOO_KEY", "GlooSession", "GlooSettings", "add_gloo_options",
           "read_gloo_settings"]

BACKEND_NAMES = ("local", "gloo")
"""What ``--edge-backend`` accepts."""

BACKEND_HELP = ("what runs each case's plan: local (every device in this process) or gloo "
                "(one process per device, torch.distributed; started once per session and "
                "cluster size) (default: local)")
INIT_HELP = ("how the gloo backend starts its ranks: spawn (processes on this host, "
             "127.0.0.1) or env (this process is rank 0; the other ranks run 'python -m "
             "pytest_edgeenergy worker' on other hosts and meet through MASTER_ADDR/"
             "MASTER_PORT/WORLD_SIZE) (default: spawn)")
TIMEOUT_HELP = "seconds one gloo run may take before its ranks are stopped (default: 120)"
JOIN_TIMEOUT_HELP = ("seconds rank 0 waits for the worker ranks to join (env) (default: 60)")
PORT_HELP = ("the gloo rendezvous port: rank 0's port on 127.0.0.1 (spawn; default: a free "
             "one) or MASTER_PORT (env)")
IFNAME_HELP = "network interface gloo binds to on this host, e.g. eth0 (env)"
TRACE_DIR_HELP = ("save every gloo case's measured trace (counts and timeline) as "
                  "<case>.trace.json in this folder, for 'python -m pytest_edgeenergy calibrate "
                  "--from-trace'")

_OPTIONS: tuple[tuple[str, str], ...] = (
    ("edge_backend", BACKEND_HELP), ("edge_gloo_init", INIT_HELP),
    ("edge_gloo_timeout", TIMEOUT_HELP), ("edge_gloo_join_timeout", JOIN_TIMEOUT_HELP),
    ("edge_gloo_port", PORT_HELP), ("edge_gloo_ifname", IFNAME_HELP),
    ("edge_trace_dir", TRACE_DIR_HELP))

GLOO_OUTPUT_KEY = "pytest_edgeenergy_gloo_startups"
"""The key of an xdist worker's pool start-ups in ``workeroutput``."""


def add_gloo_options(parser: pytest.Parser) -> None:
    """Add the backend options and their ini twins to the ``edgeenergy`` group."""
    group = parser.getgroup(GROUP)
    for dest, help_text in _OPTIONS:
        group.addoption("--" + dest.replace("_", "-"), dest=dest, default=None,
                        metavar=dest.removeprefix("edge_").removeprefix("gloo_").upper(),
                        help=help_text.replace("%", "%%"))
        parser.addini(dest, help_text, type="string", default=None)


@dataclass(frozen=True)
class GlooSettings:
    """The backend options, resolved (command line > ini > default) and checked."""

    backend: str = "local"
    gloo: GlooConfig = dataclasses.field(default_factory=GlooConfig)
    trace_dir: Path | None = None


def _choice(config: pytest.Config, dest: str, choices: tuple[str, ...], default: str) -> str:
    text, source = _text(config, dest)
    if text is None:
        return default
    if text not in choices:
        raise _error(source, text, "is not one of the choices",
                     f"valid choices: {', '.join(choices)}")
    return text


def _seconds(config: pytest.Config, dest: str, default: float) -> float:
    text, source = _text(config, dest)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise _error(source, text, "is not a positive number of seconds", "e.g. 30 or 2.5")
    return value


def read_gloo_settings(config: pytest.Config) -> GlooSettings:
    """Read and check the backend options; a usage error names the bad one."""
    backend = _choice(config, "edge_backend", BACKEND_NAMES, "local")
    init = _choice(config, "edge_gloo_init", INIT_METHODS, "spawn")
    timeout_s = _seconds(config, "edge_gloo_timeout", 120.0)
    join_s = _seconds(config, "edge_gloo_join_timeout", 60.0)
    port_text, port_source = _text(config, "edge_gloo_port")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _error(port_source, port_text, "is not a TCP port", "expected 1 to 65535")
        port = int(port_text)
    ifname, _ = _text(config, "edge_gloo_ifname")
    trace_value, trace_source = _raw(config, "edge_trace_dir")
    trace_dir = None
    if trace_value is not None:
        (written, trace_dir), = _paths(config, trace_source, trace_value)
        if trace_dir.exists() and not trace_dir.is_dir():
            raise _error(trace_source, written, "is not a folder",
                         "expected a folder to save traces in (it is created when missing)")
    if init == "env" and hasattr(config, "workerinput") and _xdist_workers(config) > 1:
        raise _error(Source("command line", "--edge-gloo-init"), init,
                     "cannot be used by several pytest-xdist workers at once",
                     "one process is rank 0 of the cluster: run without -n, or with -n 1")
    return GlooSettings(backend, GlooConfig(init, timeout_s, join_s, port, ifname), trace_dir)


def _xdist_workers(config: pytest.Config) -> int:
    count = config.workerinput.get("workercount", 1)  # type: ignore[attr-defined]
    return int(count)


GLOO_KEY = pytest.StashKey["GlooSession"]()
"""Where the session's :class:`GlooSession` lives."""


class GlooSession:
    """The session's backend settings and worker pool (a plugin object: its hooks close the
    pool at the end and report the start-ups once)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = read_gloo_settings(config)
        self.pool = WorkerPool(self.settings.gloo)
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


def _start_dict(start: PoolStart, pid: int) -> dict[str, Any]:
    return {"n_devices": start.n_devices, "init": start.init, "seconds": start.seconds,
            "pid": pid}
