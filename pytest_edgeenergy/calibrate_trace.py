"""``python -m pytest_edgeenergy calibrate --from-trace FILE``: a profile's rates from a
measured trace.

A gloo run on real boards records when each task and transfer started and ended (saved with
``pytest --edge-backend=gloo --edge-trace-dir DIR``, or ``Trace.to_json()``). From it, per
device:

* ``macs_per_s``: the MACs of the device's tasks divided by the time they took. It is an
  *effective* rate: a memory-bound layer's time is in it too, so it is what the simulation's
  ``max(macs / macs_per_s, bytes / mem_bytes_per_s)`` reproduces when compute dominates;
* ``net_bytes_per_s`` and ``net_latency_s``: a least-squares line ``duration = latency + bytes
  / rate`` through the durations of the transfers the device sent or received (see
  :func:`pytest_edgeenergy.timeline.transfer_durations`). With fewer than two distinct sizes,
  or a fit that is not increasing, the rate is total bytes over total time and no latency is
  derived.

The figures are printed as TOML lines with their derivation as a comment, to paste into the
device's profile (every figure in a profile carries its source).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import ProfileError
from .timeline import transfer_durations
from .trace import Trace

__all__ = ["DeviceRates", "derive_rates", "load_trace", "run_from_trace"]


@dataclass(frozen=True, slots=True)
class DeviceRates:
    """What a trace says about one device; ``None`` where it has no evidence."""

    device: int
    macs: int
    task_s: float
    tasks: int
    macs_per_s: float | None
    transfers: int
    transfer_bytes: int
    transfer_s: float
    net_bytes_per_s: float | None
    net_latency_s: float | None


def load_trace(path: Path) -> Trace:
    """Read a saved trace; a :class:`ProfileError` naming the file for anything else."""
    try:
        return Trace.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read trace {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"{path} is not a saved pytest-edgeenergy trace: {exc}") from None


def _fit(points: list[tuple[int, float]]) -> tuple[float | None, float | None]:
    """(bytes per second, latency) of ``duration = latency + bytes / rate``."""
    total_b = sum(b for b, _ in points)
    total_s = sum(s for _, s in points)
    if not points or total_s <= 0:
        return None, None
    n = len(points)
    if len({b for b, _ in points}) >= 2:
        mean_b = total_b / n
        mean_s = total_s / n
        sxx = sum((b - mean_b) ** 2 for b, _ in points)
        sxy = sum((b - mean_b) * (s - mean_s) for b, s in points)
        slope = sxy / sxx
        latency = mean_s - slope * mean_b
        if abs(latency) < 1e-9 * mean_s:  # rounding of an exact zero
            latency = 0.0
        if slope > 0 and latency >= 0:
            return 1.0 / slope, latency
    return total_b / total_s, None


def derive_rates(trace: Trace) -> list[DeviceRates]:
    """Per-device rates measured by ``trace``'s timeline."""
    if not trace.timeline:
        raise ProfileError(f"the trace has no timeline (backend {trace.backend!r}): only runs "
                           "of the gloo backend measure one")
    transfers = transfer_durations(trace)
    out: list[DeviceRates] = []
    for d in range(trace.n_devices):
        tasks = [e for e in trace.timeline if e.kind == "task" and e.device == d and e.macs]
        macs = sum(e.macs for e in tasks)
        task_s = sum(e.duration_s for e in tasks)
        points = [(r.bytes, s) for r, s in transfers if d in (r.device, r.peer)]
        rate, latency = _fit(points)
        out.append(DeviceRates(
            device=d, macs=macs, task_s=task_s, tasks=len(tasks),
            macs_per_s=macs / task_s if task_s > 0 else None, transfers=len(points),
            transfer_bytes=sum(b for b, _ in points), transfer_s=sum(s for _, s in points),
            net_bytes_per_s=rate, net_latency_s=latency))
    return out


def _number(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else repr(x)


def render(path: Path, trace: Trace, rates: list[DeviceRates]) -> str:
    """The derived figures as commented TOML lines, one block per device."""
    lines = [f"# derived from the measured trace {path} ({trace.n_devices} devices, backend "
             f"{trace.backend}, makespan {trace.wall_s:.6f} s) by python -m pytest_edgeenergy "
             "calibrate --from-trace"]
    for r in rates:
        lines.append(f"\n# device {r.device}")
        if r.macs_per_s is None:
            lines.append("# macs_per_s: no task with MACs ran on this device")
        else:
            lines.append(f"macs_per_s = {_number(r.macs_per_s)}  # measured: {r.macs:,} MACs in "
                         f"{r.tasks} tasks took {r.task_s:.6f} s (effective rate, memory-bound "
                         "time included)")
        if r.net_bytes_per_s is None:
            lines.append("# net_bytes_per_s: no transfer with a measured duration")
        elif r.net_latency_s is None:
            lines.append(f"net_bytes_per_s = {_number(r.net_bytes_per_s)}  # measured: "
                         f"{r.transfer_bytes:,} B in {r.transfers} transfers took "
                         f"{r.transfer_s:.6f} s (no latency derived: too few distinct sizes)")
        else:
            lines.append(f"net_bytes_per_s = {_number(r.net_bytes_per_s)}  # measured: "
                         f"least-squares fit of {r.transfers} transfers' durations against "
                         "their bytes")
            lines.append(f"net_latency_s = {_number(r.net_latency_s)}  # measured: the same "
                         "fit's intercept")
    return "\n".join(lines) + "\n"


def run_from_trace(path: Path, stream: TextIO | None = None) -> int:
    """The command: print the derived figures; exit status 0."""
    trace = load_trace(path)
    (stream or sys.stdout).write(render(path, trace, derive_rates(trace)))
    return 0


