"""Measured times from a trace's timeline, next to the schedule simulation's.

A gloo run records, per device, when each task and transfer started and ended
(:class:`~pytest_edgeenergy.trace.Event`). :func:`measure` turns that into the same figures the
schedule simulation (:mod:`pytest_edgeenergy.energy.schedule`) computes from a profile:

* ``busy_s[d]``: the sum of device d's task durations;
* ``comm_s[d]``: the sum of the durations of the transfers d sent or received. A transfer's
  measured duration runs from when both ends had posted it (the later of the send's and the
  receive's start) to when the receiver had the data (its ``recv`` event's end);
* ``makespan_s``: from the start of the run until device 0 held the output (``Trace.wall_s``).

Times of different hosts are compared on their own clocks (``time.time()``): on one host they
are one clock; across hosts they are as close as the hosts' clock synchronisation (NTP).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cluster import Cluster
from .energy.schedule import simulate
from .plan import Plan
from .trace import Event, Trace

__all__ = ["Measured", "TimesComparison", "compare_times", "measure", "transfer_durations"]


@dataclass(frozen=True, slots=True)
class Measured:
    """Measured per-device busy and communication time and the makespan, in seconds."""

    makespan_s: float
    busy_s: tuple[float, ...]
    comm_s: tuple[float, ...]


def transfer_durations(trace: Trace) -> list[tuple[Event, float]]:
    """Each network transfer's receive event and its measured duration (see the module
    docstring); transfers with no matching send event are skipped."""
    sends = {e.step: e for e in trace.timeline if e.kind == "send"}
    out: list[tuple[Event, float]] = []
    for recv in trace.timeline:
        if recv.kind != "recv":
            continue
        send = sends.get(recv.step)
        if send is None:
            continue
        out.append((recv, max(0.0, recv.end_s - max(send.start_s, recv.start_s))))
    return out


def measure(trace: Trace) -> Measured:
    """Busy, communication and makespan figures of a measured trace."""
    n = trace.n_devices
    busy = [0.0] * n
    comm = [0.0] * n
    for e in trace.timeline:
        if e.kind == "task":
            busy[e.device] += e.duration_s
    for recv, duration in transfer_durations(trace):
        comm[recv.device] += duration
        comm[recv.peer] += duration
    return Measured(trace.wall_s, tuple(busy), tuple(comm))


@dataclass(frozen=True, slots=True)
class TimesComparison:
    """Measured figures next to the schedule simulation's for the same plan and cluster."""

    measured: Measured
    simulated: Measured

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"measured_makespan_s": self.measured.makespan_s,
                "simulated_makespan_s": self.simulated.makespan_s,
                "measured_busy_s": list(self.measured.busy_s),
                "simulated_busy_s": list(self.simulated.busy_s),
                "measured_comm_s": list(self.measured.comm_s),
                "simulated_comm_s": list(self.simulated.comm_s)}

    def to_text(self) -> str:
        """A small aligned table, one row per device, then the makespans."""
        rows = [f"{'dev':>3} {'busy meas s':>12} {'busy sim s':>12} {'comm meas s':>12} "
                f"{'comm sim s':>12}"]
        m, s = self.measured, self.simulated
        for d in range(len(m.busy_s)):
            rows.append(f"{d:>3} {m.busy_s[d]:>12.6f} {s.busy_s[d]:>12.6f} "
                        f"{m.comm_s[d]:>12.6f} {s.comm_s[d]:>12.6f}")
        rows.append(f"makespan: measured {m.makespan_s:.6f} s, simulated {s.makespan_s:.6f} s")
        return "\n".join(rows)


def compare_times(trace: Trace, plan: Plan, cluster: Cluster) -> TimesComparison:
    """The measured figures of ``trace`` and the simulated ones of ``plan`` on ``cluster``."""
    sim = simulate(plan, cluster)
    return TimesComparison(measure(trace), Measured(sim.makespan_s, sim.busy_s, sim.comm_s))
