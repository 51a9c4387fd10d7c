"""Simulate a plan's static schedule on a cluster: when each step runs, and for how long.

The plan lists its steps in one valid sequential order and says what each step waits for (a
task reads pieces, a transfer sends one, each piece names the step that made it). This module
replays that order on three kinds of resources, as a list schedule with no reordering:

* each device's **processor** runs its tasks one after another, in plan order. A task starts
  when the processor is free and every piece it reads is present on the device (made by one of
  the device's earlier tasks, arrived by a transfer, or the input image, present at time 0). It
  lasts ``max(macs / macs_per_s, bytes_touched / mem_bytes_per_s)``: the slower of arithmetic
  and memory traffic, a roofline with no overlap between devices' memories.
* each device's **network interface** carries one transfer at a time, sent or received
  (half-duplex: a device's own transfers never overlap each other). A transfer of ``b`` bytes
  from ``d`` to ``e`` starts when its source piece exists and both interfaces are free, and
  lasts ``link_latency_s(d, e) + b / link_bytes_per_s(d, e)`` (the slower of the two devices).
  Transfers between different pairs of devices run in parallel: the network is a switch with
  no shared bottleneck.
* a device's processor and its network interface are independent, so a device may compute
  while it sends or receives (as a board with a DMA-driven Ethernet controller does); the
  energy of the two is counted separately.

Resources serve steps in plan order: a step never overtakes an earlier step that uses the same
processor or interface, even if its own inputs are ready sooner. The result is a pure function
of the plan's counts and the profiles; nothing is timed.

These are the rules of the default :class:`~.scenario.Scenario`. Other scenarios change them
(``docs/energy-model.md`` gives every formula):

* ``network=full-duplex``: each interface has a send side and a receive side; a transfer
  waits for the sender's send side and the receiver's receive side only.
* ``network=shared``: one medium carries every transfer of the cluster, one at a time (Wi-Fi
  airtime); a transfer waits for the medium. Through an access point (``relay=ap``) it is sent
  twice, ``latency_s(d) + b / bytes_per_s(d) + latency_s(e) + b / bytes_per_s(e)``; directly
  (``relay=direct``) once, as on a switched link.
* ``compute=per-kind``: a task runs at its layer kind's rate from the profile's
  ``[macs_per_s_by_kind]`` table where the table has it (:mod:`.kinds`).
* ``workload=stream``: images follow each other; the period is the busiest resource's time
  per image (a processor's ``busy_s``; an interface's time, the larger side under
  full-duplex; the medium's total airtime under shared), or ``1 / fps`` if that is longer.
  For ``single``, the period is the makespan.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster import Cluster
from ..plan import Plan, Task, Transfer
from ..profiles import DeviceProfile
from .errors import EnergyError
from .kinds import task_macs_per_s
from .scenario import DEFAULT_SCENARIO, Scenario

__all__ = ["Schedule", "check_cluster", "simulate", "task_duration_s", "transfer_duration_s"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When every step of a plan runs on a cluster, and how long each device works.

    ``step_start_s[s]`` and ``step_end_s[s]`` are the times of step ``s``; ``busy_s[d]`` is the
    sum of device ``d``'s task durations, ``comm_s[d]`` the time its network interface is busy
    sending or receiving. ``makespan_s`` is when device 0 holds every output piece;
    ``finish_s`` when the last step of any device ends (equal to ``makespan_s`` unless some
    step's result is never needed for the output). ``period_s`` is the time between images
    (the makespan for ``workload=single``) and ``bottleneck`` names what sets it (``"the
    schedule"``, ``"the frame rate"``, ``"device 1's processor"``, ``"the shared medium"``...).
    """

    makespan_s: float
    finish_s: float
    busy_s: tuple[float, ...]
    comm_s: tuple[float, ...]
    step_start_s: tuple[float, ...]
    step_end_s: tuple[float, ...]
    period_s: float = -1.0
    bottleneck: str = "the schedule"

    def __post_init__(self) -> None:
        """A schedule made without a period has the makespan as its period."""
        if self.period_s < 0:
            object.__setattr__(self, "period_s", self.makespan_s)


def task_duration_s(task: Task, profile: DeviceProfile, macs_per_s: float | None = None) -> float:
    """Seconds ``task`` takes on ``profile``: the slower of its MACs (at ``macs_per_s``, the
    profile's by default) and its memory traffic."""
    rate = profile.macs_per_s if macs_per_s is None else macs_per_s
    return max(task.macs / rate, task.bytes_touched / profile.mem_bytes_per_s)


def transfer_duration_s(transfer: Transfer, cluster: Cluster,
                        scenario: Scenario = DEFAULT_SCENARIO) -> float:
    """Seconds ``transfer`` takes: the link's latency plus its bytes at the slower device's rate;
    on a shared medium through an access point, one hop at each device's own figures."""
    if scenario.network == "shared" and scenario.relay == "ap":
        total = 0.0
        for device in (cluster[transfer.src], cluster[transfer.dst]):
            total += device.net_latency_s + transfer.bytes / device.net_bytes_per_s
        return total
    return (cluster.link_latency_s(transfer.src, transfer.dst)
            + transfer.bytes / cluster.link_bytes_per_s(transfer.src, transfer.dst))


def check_cluster(plan: Plan, cluster: Cluster) -> None:
    """Raise :class:`EnergyError` unless ``cluster`` has exactly the plan's number of devices."""
    if len(cluster) != plan.n_devices:
        raise EnergyError(
            f"the plan ({plan.strategy}) is for {plan.n_devices} device(s) but the cluster "
            f"{cluster.signature} has {len(cluster)}: estimate a plan on a cluster of the size "
            f"it was made for")


def simulate(plan: Plan, cluster: Cluster, scenario: Scenario = DEFAULT_SCENARIO) -> Schedule:
    """Replay ``plan``'s schedule on ``cluster`` under ``scenario`` (see the module docstring).

    Raises :class:`EnergyError` if the cluster's size differs from the plan's, or if the plan
    is not a valid schedule (a step uses a piece before it exists or on another device).
    """
    check_cluster(plan, cluster)
    n = plan.n_devices
    # ready_s[p]: when piece p is present on its device; None until the step making it ran.
    ready_s: list[float | None] = [0.0 if p.step == -1 else None for p in plan.pieces]
    cpu_free_s = [0.0] * n
    nic_free_s = [0.0] * n  # half-duplex: the interface; full-duplex: its send side
    rx_free_s = nic_free_s if scenario.network == "half-duplex" else [0.0] * n
    medium_free_s = 0.0  # network=shared: the one medium
    busy_s = [0.0] * n
    comm_s = [0.0] * n
    tx_s = [0.0] * n
    rx_s = [0.0] * n
    per_kind = scenario.compute == "per-kind"
    shared = scenario.network == "shared"
    starts: list[float] = []
    ends: list[float] = []

    def present_s(pid: int, device: int, who: str) -> float:
        piece = plan.pieces[pid]
        t = ready_s[pid]
        if t is None or piece.device != device:
            where = "before it exists" if t is None else f"but it is on device {piece.device}"
            raise EnergyError(
                f"plan ({plan.strategy}) is not a valid schedule: {who} on device {device} "
                f"needs piece {pid} of '{piece.tensor}' {where}")
        return t

    for s in plan.steps:
        if isinstance(s, Task):
            who = f"step {s.step}"
            inputs_s = [present_s(pid, s.device, who) for read in s.reads for pid in read]
            start = max([cpu_free_s[s.device], *inputs_s])
            profile = cluster.devices[s.device]
            duration = task_duration_s(s, profile, task_macs_per_s(s, plan, profile, per_kind))
            end = start + duration
            cpu_free_s[s.device] = end
            busy_s[s.device] += duration
            ready_s[s.out] = end
        else:
            source_s = present_s(s.src_piece, s.src, f"step {s.step}")
            if shared:
                start = max(source_s, medium_free_s)
            else:
                start = max(source_s, nic_free_s[s.src], rx_free_s[s.dst])
            duration = transfer_duration_s(s, cluster, scenario)
            end = start + duration
            medium_free_s = nic_free_s[s.src] = rx_free_s[s.dst] = end
            comm_s[s.src] += duration
            comm_s[s.dst] += duration
            tx_s[s.src] += duration
            rx_s[s.dst] += duration
            ready_s[s.piece] = end
        starts.append(start)
        ends.append(end)

    output_s = [present_s(pid, 0, "the final output") for pid in plan.output_pieces]
    makespan_s = max(output_s, default=0.0)
    period_s, bottleneck = _period(scenario, makespan_s, busy_s, comm_s, tx_s, rx_s)
    return Schedule(
        makespan_s=makespan_s, finish_s=max([makespan_s, *ends]), busy_s=tuple(busy_s),
        comm_s=tuple(comm_s), step_start_s=tuple(starts), step_end_s=tuple(ends),
        period_s=period_s, bottleneck=bottleneck)


def _period(scenario: Scenario, makespan_s: float, busy_s: list[float], comm_s: list[float],
            tx_s: list[float], rx_s: list[float]) -> tuple[float, str]:
    """The time between images and what sets it (module docstring, ``workload=stream``)."""
    if scenario.workload == "single":
        return makespan_s, "the schedule"
    loads: list[tuple[float, str]] = [(0.0, "nothing")]
    loads += [(b, f"device {d}'s processor") for d, b in enumerate(busy_s)]
    if scenario.network == "shared":
        loads.append((sum(tx_s), "the shared medium"))
    elif scenario.network == "full-duplex":
        loads += [(max(t, r), f"device {d}'s network interface")
                  for d, (t, r) in enumerate(zip(tx_s, rx_s, strict=True))]
    else:
        loads += [(c, f"device {d}'s network interface") for d, c in enumerate(comm_s)]
    load_s, what = max(loads, key=lambda item: item[0])  # the first of equal loads
    if scenario.fps is not None and 1.0 / scenario.fps > load_s:
        return 1.0 / scenario.fps, "the frame rate"
    return load_s, what
