"""The gloo backend: one OS process per device, transfers over ``torch.distributed`` on loopback.

:class:`GlooWorkers` starts one worker process per device (the ``spawn`` start method) and joins
them in one gloo process group whose every socket is on 127.0.0.1. :meth:`GlooWorkers.run`
hands each worker the plan, the layer graph and (to device 0) the input; every worker walks the
plan's global step order doing only its own steps with the local backend's :class:`Executor`
(so a task runs exactly as under ``local``), sends exactly the planned region of a transfer with
``dist.send`` and receives it with ``dist.recv`` into a tensor of the planned shape. Each worker
measures its own trace row from its real tensors; device 0 also assembles the output. The rows
and the output come back through the workers' pipes. :func:`run_gloo` is the one-shot form:
start the workers, run once, stop them.

Why every socket is on 127.0.0.1: ``init_method="tcp://127.0.0.1:PORT"`` makes rank 0's
rendezvous store listen on *every* address of the host (``[::]:PORT``) and gloo binds its data
sockets to whatever the host name resolves to. So device 0 listens on a socket it bound to
127.0.0.1 itself (a free port chosen by the kernel, hence no race; the others learn it through
the parent) and hands it to a :class:`torch.distributed.TCPStore`; gloo is pinned to the
loopback interface with ``GLOO_SOCKET_IFNAME``.

How the model reaches the workers: the layer graph (it holds the weights) is pickled through the
pipes with torch's multiprocessing reductions, which move each tensor's storage into shared
memory once (in place: the model's own parameters become shared-memory backed) and pass a file
descriptor. Measured for VGG-16 (553 MB of weights) on the project's 2-core machine: 0.45 s once,
then milliseconds per worker; plain pickling costs 3.1 s to dump plus 1.8 s per worker to load;
sending the model instead needs the same shared-memory move plus a graph rebuild in every
worker (0.4-0.6 s each in a fresh process). A pool sends each graph once; the workers cache it.

Failures never hang the caller: every wait has a deadline (``timeout_s``, also the process
group's own timeout), a worker that raises reports its traceback and the step it was at, a
worker that dies is noticed through its process sentinel, and on any failure all workers are
killed and one :class:`PartitionError` names the device.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import Tensor

# torch.distributed re-exports TCPStore from its C extension without declaring it.
from torch.distributed import TCPStore  # type: ignore[attr-defined]

from ..checks import as_int_in, as_positive_seconds
from ..cluster import MAX_DEVICES
from ..errors import PartitionError
from ..graph.layergraph import LayerGraph
from ..meters.measure import StopRule
from ..meters.ranks import ShareMeasurement, measure_share, measure_timeout
from ..plan import DeviceStats, Plan
from ..trace import Event, Trace
from .local import Executor, check_input
from .rank import RankResult, describe_step, run_rank
from .stall import (
    FINISHED,
    IDLE,
    MAIN_GUARD_ADVICE,
    describe_stall,
    process_state,
    script_without_main_guard,
)

__all__ = ["LOOPBACK", "GlooWorkers", "run_gloo"]

#: The only address the backend uses.
LOOPBACK = "127.0.0.1"
_LOOPBACK_IFNAME = "lo0" if sys.platform == "darwin" else "lo"
#: The last line of a failure: every rank (rank = device) ran on this host, which it names.
_KILLED = (f"every worker process was killed (rank d plays device d; all ran on this host, "
           f"{socket.gethostname()})")
#: After a first failure, how long to wait for the other workers' reports (to name the first).
_REPORT_GRACE_S = 0.5
#: How long stopped workers get to exit before they are killed.
_STOP_GRACE_S = 5.0


def _default_threads(n_devices: int) -> int:
    """Intra-op threads per worker: the host's cores shared out, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // n_devices)


# ---- the worker process --------------------------------------------------------------------

class _Worker:
    """What runs in the process of device ``rank``: join the group, then serve jobs."""

    def __init__(self, rank: int, n_devices: int, conn: Connection,
                 progress: Any = None) -> None:
        self.rank = rank
        self.n_devices = n_devices
        self.conn = conn
        # the step this worker is at, shared with the parent, which names it on a timeout
        self.progress = progress if progress is not None else [IDLE] * n_devices
        self.where = "while starting"
        self.graphs: dict[int, LayerGraph] = {}
        self.overlap = True

    def join(self, timeout_s: float, port: int | None) -> None:
        """Join the gloo group; device 0 hosts the rendezvous store on a loopback socket."""
        self.where = "while joining the process group"
        timeout = timedelta(seconds=timeout_s)
        if self.rank == 0:
            listener = socket.create_server((LOOPBACK, port or 0),
                                            backlog=max(16, self.n_devices))
            port = int(listener.getsockname()[1])
            self.conn.send(("port", port))
            # The store owns the listening socket from here on (it closes it when destroyed).
            store = TCPStore(LOOPBACK, port, self.n_devices, True, timeout,
                             master_listen_fd=listener.detach())
        else:
            msg = self.conn.recv()
            store = TCPStore(LOOPBACK, int(msg[1]), self.n_devices, False, timeout)
        dist.init_process_group("gloo", store=store, rank=self.rank, world_size=self.n_devices,
                                timeout=timeout)
        self.conn.send(("ready",))

    def serve(self) -> bool:
        """Run jobs until told to stop or the parent goes away (True), or until a job fails
        (False: the group's state is unknown then, and the parent kills every worker anyway)."""
        while True:
            self.where = "while receiving a job"
            job_id = -1
            try:
                msg = self.conn.recv()
                if msg[0] == "stop":
                    return True
                _, job_id, plan, graph_key, graph, x, t0, timeout_s, self.overlap, *meter = msg
                if meter:  # --edge-meter: measure this rank's share, in step with the others
                    share = self.measure(plan, graph_key, graph, x, timeout_s, *meter)
                    self.conn.send(("measured", job_id, share))
                else:
                    out, row, events, output_s = self.execute(plan, graph_key, graph, x, t0,
                                                              timeout_s)
                    self.conn.send(("done", job_id, row, out, events, output_s))
                self.progress[self.rank] = IDLE
            except EOFError:
                return True
            except BaseException:
                self.report(job_id)
                return False

    def execute(self, plan: Plan, graph_key: int, graph: LayerGraph | None, x: Tensor | None,
                t0: float, timeout_s: float) -> tuple[Tensor | None, DeviceStats, list[Event],
                                                      float]:
        """Run this device's share of the plan (non-blocking transfers, see :mod:`.rank`);
        return, on device 0, the output, then the measured row, the timeline and when the
        output was ready."""
        ex = self._executor(plan, graph_key, graph, x)
        result = self._run(ex, t0, timeout_s)
        self.progress[self.rank] = FINISHED
        return (result.output, ex.trace("gloo").device_stats()[self.rank], result.events,
                result.output_s)

    def measure(self, plan: Plan, graph_key: int, graph: LayerGraph | None, x: Tensor | None,
                timeout_s: float, spec: str, rule: StopRule | None) -> ShareMeasurement:
        """Measure the energy of this device's share with the meter ``spec`` names, running
        the plan again and again with the other ranks (:mod:`..meters.ranks`)."""
        self._executor(plan, graph_key, graph, x)  # keeps the graph; checks the input

        measuring = "while measuring its share with the meter"

        def once() -> None:
            self._run(self._executor(plan, graph_key, None, x), time.time(), timeout_s)
            self.where = measuring  # between runs: the meter, or the agreement with the others

        self.where = measuring
        share = measure_share(once, spec, rule, _DefaultGroup(), self.rank, self.n_devices,
                              timeout_s)
        self.progress[self.rank] = FINISHED
        return share

    def _executor(self, plan: Plan, graph_key: int, graph: LayerGraph | None,
                  x: Tensor | None) -> Executor:
        self.where = "while preparing the job"
        if graph is not None:
            self.graphs[graph_key] = graph
        held = self.graphs.get(graph_key)
        if held is None:
            raise RuntimeError(f"layer graph {graph_key} was never received")
        ex = Executor(plan, held, (self.rank,))
        if ex.needs_input():
            if x is None:
                raise RuntimeError("the input was not sent to a device that holds part of it")
            ex.hold_input(x)
        return ex

    def _run(self, ex: Executor, t0: float, timeout_s: float) -> RankResult:
        rank = self.rank

        def where(text: str) -> None:
            self.where = text

        def at(step: int) -> None:
            self.progress[rank] = step

        return run_rank(ex, rank, _DefaultGroup(), t0, timeout_s, where, at=at,
                        overlap=self.overlap)

    def report(self, job_id: int) -> None:
        """Send the current exception's traceback, where it happened and when to the parent."""
        with contextlib.suppress(OSError, ValueError):  # else the parent is gone: nobody to tell
            self.conn.send(("error", job_id, self.where, traceback.format_exc(), time.time()))

    def close(self) -> None:
        """Leave the process group (device 0's store closes the rendezvous socket)."""
        if dist.is_initialized():
            dist.destroy_process_group()


class _DefaultGroup:
    """:class:`~.rank.Comm` over the worker's default process group."""

    def isend(self, tensor: Tensor, dst: int, tag: int) -> Any:
        return dist.isend(tensor, dst=dst, tag=tag)

    def irecv(self, tensor: Tensor, src: int, tag: int) -> Any:
        return dist.irecv(tensor, src=src, tag=tag)


def _worker_main(rank: int, n_devices: int, conn: Connection, timeout_s: float, threads: int,
                 port: int | None, progress: Any = None) -> None:
    """Entry point of a worker process: exit code 0 after a clean stop, 1 after a failure."""
    os.environ["GLOO_SOCKET_IFNAME"] = _LOOPBACK_IFNAME  # gloo's sockets on 127.0.0.1 only
    torch.set_num_threads(threads)
    worker = _Worker(rank, n_devices, conn, progress)
    try:
        worker.join(timeout_s, port)
    except BaseException:
        worker.report(-1)
        ok = False
    else:
        try:
            ok = worker.serve()
        finally:
            # Leaving may fail when a peer is gone; this process ends here either way.
            with contextlib.suppress(Exception):
                worker.close()
    conn.close()
    # Skip the interpreter's teardown, which takes ~0.5 s per process once torch is loaded:
    # the group is left, the pipe closed and the streams flushed; nothing else is owned.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if ok else 1)


# ---- the parent ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Failure:
    """What went wrong in one worker: where, the traceback (or how it died), and when."""

    device: int
    where: str  # "at step 7 (...)", "while joining the process group", ...
    detail: str
    at_s: float  # wall-clock time of the failure
    died: bool  # exited without a report: always a root cause, never a consequence

    def last_line(self) -> str:
        lines = [ln for ln in self.detail.strip().splitlines() if ln.strip()]
        return lines[-1].strip() if lines else self.detail


def _exit_text(code: int | None) -> str:
    if code is None:
        return "closed its pipe"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _shutdown(procs: Sequence[BaseProcess], conns: Sequence[Connection], grace_s: float) -> None:
    """Ask the workers to stop, give them ``grace_s`` to exit, kill stragglers, close pipes."""
    if grace_s > 0:
        for conn in conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()  # SIGKILL also ends a stopped process
    for p in procs:
        p.join(5.0)
    for conn in conns:
        conn.close()


def _send_in_background(conn: Connection, payload: bytes) -> None:
    """Send without blocking the caller (a stuck worker may never drain its pipe); a worker
    that died is noticed by the caller through its process sentinel."""
    def send() -> None:
        with contextlib.suppress(OSError, ValueError):
            conn.send_bytes(payload)
    threading.Thread(target=send, name="edgeenergy-gloo-send", daemon=True).start()


class GlooWorkers:
    """One worker process per device, joined in one gloo process group on 127.0.0.1.

    Start them once and :meth:`run` many plans with ``n_devices`` devices; the layer graph is
    sent once and cached in the workers while the same graph object is run. Use as a context
    manager, or call :meth:`close`. After a failure the workers are killed and the object can
    no longer run; start new ones.

    ``overlap`` (default True; settable between runs) lets transfers and computation overlap
    (:mod:`.rank`); False is the blocking schedule, for measuring what overlap gains.

    ``timeout_s`` bounds the start-up, each run (unless :meth:`run` is given another) and the
    process group's own waits; ``port`` is the rendezvous port on 127.0.0.1 (default: a free
    one); ``threads_per_worker`` is each worker's intra-op thread count (default: the host's
    cores shared out between the workers).
    """

    def __init__(self, n_devices: int, *, timeout_s: float = 120.0, port: int | None = None,
                 threads_per_worker: int | None = None) -> None:
        n_devices = as_int_in(n_devices, "the gloo backend's device count (at least one device)",
                              1, MAX_DEVICES)
        timeout_s = as_positive_seconds(timeout_s, "timeout_s")
        if port is not None:
            port = as_int_in(port, "port", 0, 65535)
        if threads_per_worker is not None:
            threads_per_worker = as_int_in(threads_per_worker, "threads_per_worker", 0, 4096)
        self.n_devices = n_devices
        self.timeout_s = timeout_s
        self.overlap = True
        self.threads_per_worker = threads_per_worker or _default_threads(n_devices)
        self.port = -1
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        # Every graph sent, by identity: its key in the workers, and the graph itself (kept
        # alive, so that its identity cannot be reused by another object).
        self._graphs: dict[int, tuple[int, LayerGraph]] = {}
        self._job = 0
        self.startup_s = 0.0
        self._broken: str | None = None
        self._plan: Plan | None = None  # the plan running: named in a timeout's message
        self._progress: Any = None
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns,
                                           _STOP_GRACE_S)
        started = time.perf_counter()
        self._start(port)
        #: Seconds the start-up took (processes spawned, torch imported, group joined).
        self.startup_s = time.perf_counter() - started

    # ---- public ---------------------------------------------------------------------------
    @property
    def pids(self) -> list[int]:
        """The worker processes' ids, indexed by device."""
        return [int(p.pid or 0) for p in self._procs]

    @property
    def exitcodes(self) -> list[int | None]:
        """The worker processes' exit codes, indexed by device (None while running)."""
        return [p.exitcode for p in self._procs]

    @property
    def alive(self) -> bool:
        """True while the workers can run plans."""
        return self._broken is None and self._finalizer.alive

    def run(self, plan: Plan, graph: LayerGraph, x: Tensor, *,
            timeout_s: float | None = None) -> tuple[Tensor, Trace]:
        """Execute ``plan`` for input ``x``; return device 0's output and the measured trace."""
        got = self._dispatch(plan, graph, x, timeout_s, "done", ())
        trace = Trace(n_devices=self.n_devices, backend="gloo")
        for d, msg in got.items():
            row: DeviceStats = msg[2]
            trace.set_device(d, row)
            trace.timeline += msg[4]
        trace.timeline.sort(key=lambda e: (e.start_s, e.device, e.step))
        trace.wall_s = got[0][5]
        out = got[0][3]
        assert isinstance(out, Tensor)
        return out, trace

    def measure(self, plan: Plan, graph: LayerGraph, x: Tensor, spec: str,
                rule: StopRule | None = None, *,
                timeout_s: float | None = None) -> list[ShareMeasurement]:
        """Have every worker measure its device's share of ``plan`` with the meter ``spec``
        names (opened in the worker), in step (:mod:`..meters.ranks`); one per device.
        ``timeout_s`` bounds each run, as in :meth:`run`."""
        got = self._dispatch(plan, graph, x, timeout_s, "measured", (spec, rule))
        return [got[d][2] for d in range(self.n_devices)]

    def _dispatch(self, plan: Plan, graph: LayerGraph, x: Tensor, timeout_s: float | None,
                  kind: str, meter: tuple[Any, ...]) -> dict[int, tuple[Any, ...]]:
        """Send every worker the job (``meter``: (spec, rule) to measure it instead of
        running it once) and wait for each one's ``kind`` answer."""
        if not self.alive:
            raise PartitionError(f"the gloo workers cannot run: {self._broken or 'closed'}")
        if plan.n_devices != self.n_devices:
            raise PartitionError(f"a plan for {plan.n_devices} devices cannot run on "
                                 f"{self.n_devices} gloo workers")
        check_input(plan, x)
        timeout = (self.timeout_s if timeout_s is None
                   else as_positive_seconds(timeout_s, "timeout_s"))
        wait_s = measure_timeout(meter[1], timeout) if meter else timeout
        self._job += 1
        known = self._graphs.get(id(graph))
        new_graph = known is None
        key = len(self._graphs) + 1 if known is None else known[0]
        holders = {p.device for p in plan.pieces if p.step == -1}
        t0 = time.time()
        try:
            payloads = [bytes(ForkingPickler.dumps(
                ("job", self._job, plan, key, graph if new_graph else None,
                 x.detach() if d in holders else None, t0, timeout, self.overlap, *meter)))
                for d in range(self.n_devices)]
        except Exception as exc:
            raise PartitionError(f"gloo backend: the plan, layer graph or input cannot be sent "
                                 f"to the worker processes: {exc!r}") from exc
        # The workers now hold this graph too: each graph is sent once.
        self._graphs[id(graph)] = (key, graph)
        self._plan = plan
        try:
            for conn, payload in zip(self._conns, payloads, strict=True):
                _send_in_background(conn, payload)
            got = self._gather(kind, range(self.n_devices), wait_s,
                               "measurement" if meter else "result", self._job)
        except PartitionError:
            raise
        except BaseException:  # e.g. KeyboardInterrupt: the workers' state is unknown now
            self._abort("interrupted")
            raise
        return got

    def close(self) -> None:
        """Stop the workers (they leave the process group and exit); kill any that hang."""
        self._finalizer()

    def __enter__(self) -> GlooWorkers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "alive" if self.alive else (self._broken or "closed")
        return f"GlooWorkers(n_devices={self.n_devices}, port={self.port}, {state})"

    # ---- start-up and waiting -------------------------------------------------------------
    def _start(self, port: int | None) -> None:
        ctx = get_context("spawn")
        self._progress = ctx.RawArray("q", [IDLE] * self.n_devices)
        for rank in range(self.n_devices):
            parent_conn, child_conn = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=_worker_main, name=f"edgeenergy-gloo-device-{rank}", daemon=True,
                args=(rank, self.n_devices, child_conn, self.timeout_s, self.threads_per_worker,
                      port if rank == 0 else None, self._progress))
            proc.start()
            child_conn.close()  # the child's copy is the only one: EOF when it exits
            self._procs.append(proc)
            self._conns.append(parent_conn)
        deadline_s = self.timeout_s
        t0 = time.monotonic()
        self.port = int(self._gather("port", [0], deadline_s, "rendezvous port")[0][1])
        for conn in self._conns[1:]:
            with contextlib.suppress(OSError, ValueError):  # it died: the wait below reports it
                conn.send(("port", self.port))
        self._gather("ready", range(self.n_devices), deadline_s - (time.monotonic() - t0),
                     "ready signal")

    def _gather(self, kind: str, devices: Sequence[int] | range, timeout_s: float, what: str,
                job: int | None = None) -> dict[int, tuple[Any, ...]]:
        """Wait for a ``kind`` message from each of ``devices``; on a failure, a death or the
        deadline, kill every worker and raise one :class:`PartitionError`."""
        deadline = time.monotonic() + timeout_s
        pending = set(devices)
        got: dict[int, tuple[Any, ...]] = {}
        failures: list[_Failure] = []
        while pending and not failures:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                late = ", ".join(str(d) for d in sorted(pending))
                stall = self._stall(pending, job)
                self._abort(f"device(s) {late} timed out")
                raise PartitionError(
                    f"gloo backend: device(s) {late} gave no {what} within {timeout_s:g} s "
                    f"(timeout_s){stall}; {_KILLED}")
            self._round(pending, remaining, kind, job, got, failures)
        if failures:
            self._raise(failures, pending, kind, job)
        return got

    def _stall(self, pending: set[int], job: int | None) -> str:
        """``: device 2 is stuck at step 7 (...)``, read before the workers are killed."""
        if job is None or self._plan is None or self._progress is None:
            return ""
        at = {d: int(self._progress[d]) for d in range(self.n_devices)}
        pids = [p.pid or 0 for p in self._procs]
        states = {d: process_state(pid) for d, pid in enumerate(pids)}
        return ": " + describe_stall(self._plan, sorted(pending), at, states,
                                     dict(enumerate(pids)), describe_step)

    def _round(self, pending: set[int], timeout_s: float, kind: str, job: int | None,
               got: dict[int, tuple[Any, ...]], failures: list[_Failure]) -> None:
        """Wait up to ``timeout_s`` for any pending device, then take every pending device's
        message into ``got`` or its failure into ``failures`` (either way it is no longer
        pending)."""
        self._wait(pending, timeout_s)
        for d in sorted(pending):
            outcome = self._poll(d, kind, job)
            if isinstance(outcome, _Failure):
                failures.append(outcome)
            elif outcome is not None:
                got[d] = outcome
            else:
                continue
            pending.discard(d)

    def _wait(self, devices: set[int], timeout_s: float) -> None:
        waitables: list[Any] = []
        for d in devices:
            waitables += [self._conns[d], self._procs[d].sentinel]
        wait(waitables, timeout_s)

    def _poll(self, d: int, kind: str, job: int | None) -> tuple[Any, ...] | _Failure | None:
        """Device ``d``'s message if one is waiting, a failure if it reported or died, else
        None."""
        conn, proc = self._conns[d], self._procs[d]
        try:
            if conn.poll(0):
                msg: tuple[Any, ...] = conn.recv()
                if msg[0] == "error":
                    return _Failure(d, msg[2], msg[3], msg[4], died=False)
                if msg[0] == kind and (job is None or msg[1] == job):
                    return msg
                return _Failure(d, "while answering", f"unexpected message {msg[0]!r}",
                                time.time(), died=False)
        except (EOFError, OSError):
            pass
        else:
            if proc.is_alive():
                return None
        proc.join(1.0)
        return _Failure(d, "while running", f"its worker process (pid {proc.pid}) "
                                      f"{_exit_text(proc.exitcode)} without reporting an error",
                        time.time(), died=True)

    def _raise(self, failures: list[_Failure], pending: set[int], kind: str,
               job: int | None) -> NoReturn:
        """Let the other workers report for a moment, kill all, raise naming the first
        failure (a worker that died silently, else the earliest report)."""
        deadline = time.monotonic() + _REPORT_GRACE_S
        while pending and (remaining := deadline - time.monotonic()) > 0:
            self._round(pending, remaining, kind, job, {}, failures)
        failures.sort(key=lambda f: (not f.died, f.at_s))
        first = failures[0]
        self._abort(f"device {first.device} failed")
        lines = [f"gloo backend: device {first.device} failed {first.where}:",
                 first.detail.rstrip()]
        script = script_without_main_guard() if first.died and job is None else None
        if script is not None:  # died while starting: the script ran again in the worker
            lines.append(MAIN_GUARD_ADVICE.format(path=script))
        for f in failures[1:]:
            lines.append(f"(then device {f.device} failed {f.where}: {f.last_line()})")
        lines.append(_KILLED)
        raise PartitionError("\n".join(lines))

    def _abort(self, why: str) -> None:
        self._broken = f"stopped after a failure ({why})"
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(5.0)
        self._finalizer()


def run_gloo(plan: Plan, graph: LayerGraph, x: Tensor, *, timeout_s: float = 120.0,
             port: int | None = None, workers: GlooWorkers | None = None) -> tuple[Tensor, Trace]:
    """Execute ``plan`` for input ``x`` with one process per device; return device 0's output
    and the trace every device measured.

    With ``workers`` the plan runs on those (already started) processes; otherwise a
    :class:`GlooWorkers` is started for this run and stopped after it. ``timeout_s`` bounds the
    start-up and the run; ``port`` is the rendezvous port on 127.0.0.1 of the started workers
    (default: a free one).
    """
    if workers is not None:
        return workers.run(plan, graph, x, timeout_s=timeout_s)
    check_input(plan, x)
    with GlooWorkers(plan.n_devices, timeout_s=timeout_s, port=port) as started:
        return started.run(plan, graph, x)
