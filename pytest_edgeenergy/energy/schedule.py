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
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster import Cluster
from ..plan import Plan, Task, Transfer
from ..profiles import DeviceProfile
from .errors import EnergyError

__all__ = ["Schedule", "check_cluster", "simulate", "task_duration_s", "transfer_duration_s"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When every step of a plan runs on a cluster, and how long each device works.

    ``step_start_s[s]`` and ``step_end_s[s]`` are the times of step ``s``; ``busy_s[d]`` is the
    sum of device ``d``'s task durations, ``comm_s[d]`` the time its network interface is busy
    sending or receiving. ``makespan_s`` is when device 0 holds every output piece;
    ``finish_s`` when the last step of any device ends (equal to ``makespan_s`` unless some
    step's result is never needed for the output).
    """

    makespan_s: float
    finish_s: float
    busy_s: tuple[float, ...]
    comm_s: tuple[float, ...]
    step_start_s: tuple[float, ...]
    step_end_s: tuple[float, ...]


def task_duration_s(task: Task, profile: DeviceProfile) -> float:
    """Seconds ``task`` takes on ``profile``: the slower of its MACs and its memory traffic."""
    return max(task.macs / profile.macs_per_s, task.bytes_touched / profile.mem_bytes_per_s)


def transfer_duration_s(transfer: Transfer, cluster: Cluster) -> float:
    """Seconds ``transfer`` takes: the link's latency plus its bytes at the slower device's rate."""
    return (cluster.link_latency_s(transfer.src, transfer.dst)
            + transfer.bytes / cluster.link_bytes_per_s(transfer.src, transfer.dst))


def check_cluster(plan: Plan, cluster: Cluster) -> None:
    """Raise :class:`EnergyError` unless ``cluster`` has exactly the plan's number of devices."""
    if len(cluster) != plan.n_devices:
        raise EnergyError(
            f"the plan ({plan.strategy}) is for {plan.n_devices} device(s) but the cluster "
            f"{cluster.signature} has {len(cluster)}: estimate a plan on a cluster of the size "
            f"it was made for")


def simulate(plan: Plan, cluster: Cluster) -> Schedule:
    """Replay ``plan``'s schedule on ``cluster`` (see the module docstring for the rules).

    Raises :class:`EnergyError` if the cluster's size differs from the plan's, or if the plan
    is not a valid schedule (a step uses a piece before it exists or on another device).
    """
    check_cluster(plan, cluster)
    n = plan.n_devices
    # ready_s[p]: when piece p is present on its device; None until the step making it ran.
    ready_s: list[float | None] = [0.0 if p.step == -1 else None for p in plan.pieces]
    cpu_free_s = [0.0] * n
    nic_free_s = [0.0] * n
    busy_s = [0.0] * n
    comm_s = [0.0] * n
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
            duration = task_duration_s(s, cluster.devices[s.device])
            end = start + duration
            cpu_free_s[s.device] = end
            busy_s[s.device] += duration
            ready_s[s.out] = end
        else:
            source_s = present_s(s.src_piece, s.src, f"step {s.step}")
            start = max(source_s, nic_free_s[s.src], nic_free_s[s.dst])
            duration = transfer_duration_s(s, cluster)
            end = start + duration
            nic_free_s[s.src] = nic_free_s[s.dst] = end
            comm_s[s.src] += duration
            comm_s[s.dst] += duration
            ready_s[s.piece] = end
        starts.append(start)
        ends.append(end)

    output_s = [present_s(pid, 0, "the final output") for pid in plan.output_pieces]
    makespan_s = max(output_s, default=0.0)
    return Schedule(
        makespan_s=makespan_s, finish_s=max([makespan_s, *ends]), busy_s=tuple(busy_s),
        comm_s=tuple(comm_s), step_start_s=tuple(starts), step_end_s=tuple(ends))
