"""Per-rank metering under the gloo backend: each rank measures its own share of an inference.

A rank cannot run its share alone (it waits for its peers' transfers), so every rank measures
at the same time: :func:`measure_share` runs :func:`~.measure.measure_energy` in step with the
other ranks (:class:`RankAgreement`: one window length for all, and windows repeated until
every rank's series met the stop rule). Each rank opens the named meter on the machine it runs
on (:func:`open_meter`); a rank whose meter is unavailable, or fails while measuring, still
runs every window with the others (they need its transfers) and reports why it measured
nothing. What a rank measured travels back to rank 0 as a :class:`ShareMeasurement`.

Nothing here imports the backends: a rank hands in its ``run`` (one inference of its share)
and a ``comm`` with ``isend``/``irecv`` (:class:`~pytest_edgeenergy.backends.rank.Comm`).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .measure import MeasuredEnergy, StopRule, measure_energy
from .protocol import BOARD, Availability, Meter, MeterError, Reading
from .registry import MeterSpecError, get_meter

if TYPE_CHECKING:
    import torch

__all__ = ["AGREE_TAG", "RankAgreement", "ShareMeasurement", "measure_share", "measure_timeout",
           "open_meter"]

AGREE_TAG = (1 << 30) + 1
"""The tag of the ranks' agreement messages: the plan's steps use tags 0..n_steps-1 and the
weight slices ``1 << 30`` (:data:`~pytest_edgeenergy.backends.worker.GRAPH_TAG`)."""


class _Comm(Protocol):
    def isend(self, tensor: torch.Tensor, dst: int, tag: int) -> Any: ...

    def irecv(self, tensor: torch.Tensor, src: int, tag: int) -> Any: ...


@dataclasses.dataclass(frozen=True)
class ShareMeasurement:
    """What rank ``device`` measured on ``host``: the energy of its share above idle, or
    (``measured`` None) why not."""

    device: int
    host: str
    measured: MeasuredEnergy | None
    reason: str = ""


class RankAgreement:
    """:class:`~.measure.Together` over point-to-point messages: every rank sends its value
    to rank 0, which combines them and sends the result back. ``passenger()`` true: this rank
    measures nothing and never holds the others back."""

    def __init__(self, comm: _Comm, rank: int, world_size: int, timeout_s: float,
                 passenger: Callable[[], bool] = lambda: False) -> None:
        self.comm = comm
        self.rank = rank
        self.world_size = world_size
        self.timeout = timedelta(seconds=timeout_s)
        self.passenger = passenger

    def _combine(self, value: float, combine: Callable[[list[float]], float]) -> float:
        if self.world_size == 1:
            return combine([value])
        import torch  # here: the report's modules import this one, and need no torch
        mine = torch.tensor([value], dtype=torch.float64)
        if self.rank != 0:
            self.comm.isend(mine, 0, AGREE_TAG).wait(self.timeout)
            self.comm.irecv(mine, 0, AGREE_TAG).wait(self.timeout)
            return float(mine.item())
        bufs = [torch.empty(1, dtype=torch.float64) for _ in range(1, self.world_size)]
        works = [self.comm.irecv(b, r, AGREE_TAG) for r, b in enumerate(bufs, start=1)]
        for work in works:
            work.wait(self.timeout)
        result = torch.tensor([combine([value] + [float(b.item()) for b in bufs])],
                              dtype=torch.float64)
        sends = [self.comm.isend(result, r, AGREE_TAG) for r in range(1, self.world_size)]
        for work in sends:
            work.wait(self.timeout)
        return float(result.item())

    def max(self, value: float) -> float:
        """The largest of every rank's ``value``."""
        return self._combine(value, max)

    def all(self, flag: bool) -> bool:
        """Whether every rank's ``flag`` is true (a passenger's always is)."""
        return self._combine(1.0 if flag or self.passenger() else 0.0, min) > 0.5


_OPEN: dict[str, Meter] = {}


def open_meter(spec: str) -> tuple[Meter | None, str]:
    """The meter ``spec`` names, opened once per process, or (None, why it cannot measure
    here)."""
    meter = _OPEN.get(spec)
    if meter is not None:
        return meter, ""
    try:
        meter = get_meter(spec)
    except MeterSpecError as exc:
        return None, f"{exc} (in the process of this rank)"
    available = meter.available()
    if not available:
        return None, available.reason
    _OPEN[spec] = meter
    return meter, ""


class _Guarded:
    """The rank's meter, or nothing: a rank without one (or whose meter failed) runs the
    windows unmeasured and reads 0 J."""

    def __init__(self, meter: Meter | None, name: str) -> None:
        self.meter = meter
        self.name = meter.name if meter is not None else name
        self.failed = ""
        self.resolution_s = float(getattr(meter, "resolution_s", 0.0))
        self._t0 = 0.0

    @property
    def passenger(self) -> bool:
        return self.meter is None or bool(self.failed)

    def available(self) -> Availability:
        return Availability(not self.passenger, self.failed or "this rank measures nothing")

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if not self.passenger:
            assert self.meter is not None
            try:
                self.meter.start()
            except MeterError as exc:
                self.failed = str(exc)

    def stop(self) -> Reading:
        if not self.passenger:
            assert self.meter is not None
            try:
                return self.meter.stop()
            except MeterError as exc:
                self.failed = str(exc)
        return Reading(self.name, {BOARD: 0.0}, time.perf_counter() - self._t0, "not measured")


def measure_share(run: Callable[[], object], spec: str, rule: StopRule | None, comm: _Comm,
                  rank: int, world_size: int, timeout_s: float,
                  host: str | None = None) -> ShareMeasurement:
    """Measure this rank's share (``run``: one inference of it, with the other ranks) with
    the meter ``spec`` names, in step with every other rank (each calls this at once)."""
    host = host or socket.gethostname()
    meter, reason = open_meter(spec)
    guarded = _Guarded(meter, spec)
    agreement = RankAgreement(comm, rank, world_size, timeout_s,
                              passenger=lambda: guarded.passenger)
    if agreement.all(meter is None):  # nobody can measure: do not run the windows
        return ShareMeasurement(rank, host, None, reason)
    measured = measure_energy(run, guarded, rule, scope=f"rank {rank} on host {host}",
                              together=agreement)
    if meter is None:
        return ShareMeasurement(rank, host, None, reason)
    if guarded.failed:
        return ShareMeasurement(rank, host, None,
                                f"the meter failed while measuring: {guarded.failed}")
    return ShareMeasurement(rank, host, measured)


def measure_timeout(rule: StopRule | None, run_timeout_s: float) -> float:
    """A bound on one measurement under the gloo backend: two series of at most
    ``max_seconds`` plus the windows begun before the deadline, each window at most a
    minimum window and one run (each run is bounded by ``run_timeout_s`` itself)."""
    rule = rule or StopRule()
    window_s = rule.min_window_s + run_timeout_s
    return 2 * (rule.max_seconds + (rule.min_windows + 1) * window_s) + 2 * run_timeout_s
