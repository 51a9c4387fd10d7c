"""A worker rank on another host: ``python -m pytest_edgeenergy worker``.

:func:`supervise` is the command: it keeps one rank process (:func:`_rank_main`) running for
device ``rank`` until rank 0 ends the session. The rank process joins the current generation of
rank 0's group through the env:// rendezvous (:mod:`.rendezvous`), then runs the jobs rank 0
posts: it receives only its own weight slices (and checks that it holds exactly its planned
weight bytes), runs its share of the plan with :func:`~.rank.run_rank`, and posts its measured
row and timeline. A heartbeat thread reports every :data:`~.rendezvous.HEARTBEAT_S` where the
rank is, and ends the process at once when rank 0 abandons the generation, ends the session, or
the supervisor dies.

When the rank process ends for any reason other than the end of the session (an error, a
signal, a kill), the supervisor writes how it ended into the store, for rank 0's message, and
starts a new one, which joins rank 0's next generation: the next run gets a healthy group.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import time
import traceback
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any

import torch

from ..errors import PartitionError
from ..graph.layergraph import LayerGraph
from ..meters.ranks import measure_share
from ..plan import Plan
from .gloo import _exit_text
from .local import Executor
from .rank import RankResult, run_rank
from .rendezvous import HEARTBEAT_S, PREFIX, GroupComm, Rendezvous, dumps, loads, make_group
from .slices import check_held

__all__ = ["GRAPH_TAG", "supervise"]

#: The tag of the message that carries a rank's weight slices (steps use tags 0..n_steps-1).
GRAPH_TAG = 1 << 30
_POLL_S = 0.002


class _Rank:
    """The state of one rank process in one generation."""

    def __init__(self, rv: Rendezvous, rank: int, joined: Any) -> None:
        self.rv = rv
        self.joined = joined  # shared with the supervisor: the generation this rank joined
        self.rank = rank
        self.host = socket.gethostname()
        self.where = "while joining"
        self.store: Any = rv.store(False)
        self.generation = -1
        self.graph: LayerGraph | None = None
        self.parent = os.getppid()

    def key(self, name: str) -> str:
        return f"{PREFIX}g{self.generation}/{name}"

    def flag(self, name: str) -> bool:
        return bool(self.store.check([f"{PREFIX}{name}"]))

    def wait_for_generation(self) -> bool:
        """Wait for a generation this rank has not joined yet (False: the session ended)."""
        while True:
            if self.flag("stop") or os.getppid() != self.parent:
                return False
            if self.store.check([f"{PREFIX}generation"]):
                g = int(self.store.get(f"{PREFIX}generation"))
                self.generation = g
                if not self.store.check([self.key(f"join/{self.rank}")]) and \
                        not self.store.check([self.key("abort")]):
                    return True
            time.sleep(0.05)

    def heartbeat(self, parent: int) -> None:
        """Report liveness and position; end the process when the generation is over."""
        client: Any = self.rv.client()
        beat = 0
        while True:
            beat += 1
            try:
                client.set(self.key(f"alive/{self.rank}"), dumps((beat, self.where)))
                over = client.check([self.key("abort")]) or client.check([f"{PREFIX}stop"])
            except Exception:  # rank 0 is gone: nobody to work for
                os._exit(4)
            if over:
                os._exit(0 if client.check([f"{PREFIX}stop"]) else 3)
            if os.getppid() != parent:  # the supervisor died: do not outlive it
                os._exit(5)
            time.sleep(HEARTBEAT_S)

    def serve(self) -> int:
        """Join, then run jobs until the generation ends (exit status of the process)."""
        if not self.wait_for_generation():
            return 0
        self.joined.value = self.generation
        self.store.set(self.key(f"join/{self.rank}"), dumps((self.host, os.getpid())))
        threading.Thread(target=self.heartbeat, args=(os.getppid(),), daemon=True,
                         name="edgeenergy-heartbeat").start()
        self.where = "while connecting to the other ranks"
        group = make_group(self.store, self.generation, self.rank, self.rv)
        comm = GroupComm(group)
        job = 0
        while True:
            job += 1
            self.where = "while waiting for a job"
            key = self.key(f"job/{job}/{self.rank}")
            while not self.store.check([key]):
                if self.store.check([self.key("abort")]) or self.flag("stop"):
                    return 0
                time.sleep(_POLL_S)
            try:
                plan, graph_bytes, t0, timeout_s, *meter = loads(self.store.get(key))
                self.store.delete_key(key)
                done = self.execute(plan, graph_bytes, comm, t0, timeout_s, tuple(meter))
                self.store.set(self.key(f"done/{job}/{self.rank}"), dumps(done))
            except BaseException:
                self.store.set(self.key(f"error/{job}/{self.rank}"),
                               dumps((self.where, traceback.format_exc(), time.time())))
                return 1

    def execute(self, plan: Plan, graph_bytes: int, comm: GroupComm, t0: float,
                timeout_s: float, meter: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """Receive the weight slices if they changed, check them, run this rank's share:
        (row, timeline, weight bytes held); with ``meter`` ((spec, rule), ``--edge-meter``)
        measure its energy instead, in step with the other ranks: (None, [], held, what it
        measured)."""
        if graph_bytes:
            self.where = "while receiving its weight slices"
            buf = torch.empty(graph_bytes, dtype=torch.uint8)
            comm.irecv(buf, 0, GRAPH_TAG).wait()
            self.graph = loads(buf.numpy().tobytes())
        if self.graph is None:
            raise PartitionError("no weight slices were received")
        held = check_held(self.graph, plan, self.rank)
        if meter:
            spec, rule = meter
            self.where = "while measuring its share with the meter"
            share = measure_share(lambda: self._share(plan, comm, time.time(), timeout_s),
                                  spec, rule, comm, self.rank, self.rv.world_size, timeout_s,
                                  self.host)
            return None, [], held, share
        ex, result = self._share(plan, comm, t0, timeout_s)
        return ex.trace("gloo").device_stats()[self.rank], result.events, held

    def _share(self, plan: Plan, comm: GroupComm, t0: float,
               timeout_s: float) -> tuple[Executor, RankResult]:
        assert self.graph is not None
        ex = Executor(plan, self.graph, (self.rank,))
        if ex.needs_input():
            raise PartitionError("only rank 0 holds the input")

        def where(text: str) -> None:
            self.where = text

        return ex, run_rank(ex, self.rank, comm, t0, timeout_s, where)


def _rank_main(rv: Rendezvous, rank: int, threads: int, joined: Any) -> None:
    """Entry point of a rank process."""
    if rv.ifname:
        os.environ["GLOO_SOCKET_IFNAME"] = rv.ifname
    torch.set_num_threads(threads)
    try:
        code = _Rank(rv, rank, joined).serve()
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip torch's slow teardown; the group is abandoned either way


def _note_death(rv: Rendezvous, rank: int, generation: int, how: str) -> bool:
    """Tell rank 0 how the rank process of ``generation`` ended; False when the session is
    over or rank 0 is gone."""
    try:
        quick = dataclasses.replace(rv, join_timeout_s=min(5.0, rv.join_timeout_s))
        store: Any = quick.client()
        if store.check([f"{PREFIX}stop"]):
            return False
        if generation > 0:
            store.set(f"{PREFIX}g{generation}/died/{rank}",
                      dumps((how, socket.gethostname(), time.time())))
        return True
    except Exception:
        return False


class _Master:
    """The supervisor's view of rank 0: reachable, ended the session, or gone."""

    def __init__(self, rv: Rendezvous) -> None:
        self.rv = dataclasses.replace(rv, join_timeout_s=2.0)  # never block the watch long
        self.store: Any = None
        self.seen = False  # rank 0 was reachable once: unreachable now means it is gone

    def state(self, generation: int) -> tuple[str, bool]:
        """(``"up"``, ``"stopped"`` or ``"gone"``/``"not yet"``, whether ``generation``, the
        one the rank process joined (-1: none yet), was abandoned)."""
        try:
            self.store = self.store or self.rv.client()
            self.seen = True
            if self.store.check([f"{PREFIX}stop"]):
                return "stopped", True
            if generation < 0:
                return "up", False
            return "up", bool(self.store.check([f"{PREFIX}g{generation}/abort"]))
        except Exception:
            self.store = None
            return ("gone" if self.seen else "not yet"), False


def _watch(master: _Master, proc: BaseProcess, joined: Any) -> str:
    """Wait for the rank process to end (``"exited"``), or end it: when rank 0 ended the
    session (``"stopped"``) or is gone (``"gone"``), or abandoned the generation and the
    process does not leave it by itself (stopped, or stuck in native code; killing it closes
    its connections, which releases the ranks waiting for it)."""
    abandoned_at: float | None = None
    while proc.is_alive():
        proc.join(HEARTBEAT_S)
        if not proc.is_alive():
            break
        state, abandoned = master.state(int(joined.value))
        if state in ("stopped", "gone"):
            proc.join(4 * HEARTBEAT_S)  # it normally sees this itself and exits
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
            return state
        if abandoned:
            abandoned_at = abandoned_at or time.monotonic()
            if time.monotonic() - abandoned_at > 4 * HEARTBEAT_S:
                proc.kill()
        else:
            abandoned_at = None
    return "exited"


def supervise(rv: Rendezvous, rank: int, *, threads: int = 1, restart: bool = True,
              log: Any = print) -> int:
    """Keep device ``rank``'s process running until rank 0 ends the session; exit status."""
    if not 1 <= rank < rv.world_size:
        raise PartitionError(f"rank {rank} is not a worker rank of a world of {rv.world_size}: "
                             f"worker ranks are 1..{rv.world_size - 1} (rank 0 is the process "
                             "that runs pytest or your script)")
    ctx = get_context("spawn")
    host = socket.gethostname()
    master = _Master(rv)
    while True:
        joined = ctx.Value("i", -1)
        proc = ctx.Process(target=_rank_main, args=(rv, rank, threads, joined),
                           name=f"edgeenergy-rank-{rank}", daemon=True)
        proc.start()
        log(f"edgeenergy worker: rank {rank} of {rv.world_size} on {host} (pid {proc.pid}) "
            f"joining {rv.addr}:{rv.port}", flush=True)
        try:
            ended = _watch(master, proc, joined)
        except BaseException:  # Ctrl-C or SIGTERM: take the rank down with us
            proc.kill()
            proc.join(5.0)
            raise
        if ended == "gone":
            log(f"edgeenergy worker: rank {rank}: rank 0 is gone", flush=True)
            return 1
        if proc.exitcode == 0 or ended == "stopped":
            log(f"edgeenergy worker: rank {rank}: the session ended", flush=True)
            return 0
        how = f"its process (pid {proc.pid}) {_exit_text(proc.exitcode)}"
        if not _note_death(rv, rank, int(joined.value), how):
            log(f"edgeenergy worker: rank {rank}: {how}; rank 0 is gone or ended the session",
                flush=True)
            return 1
        if not restart:
            return 1
        log(f"edgeenergy worker: rank {rank}: {how}; restarting", flush=True)
        time.sleep(0.2)



