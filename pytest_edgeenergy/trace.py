"""The Trace: what a backend measured while executing a plan.

The counts (MACs, bytes, messages, weights, peak memory per device) are measured from the
tensors a backend really computed and moved; they must equal the plan's. A backend that runs
devices in separate processes (``gloo``) also records a **timeline**: when each device's tasks
and transfers started and ended, in seconds since the run began. The timeline is what
:mod:`.timeline` turns into measured busy and communication time per device, and what
``python -m pytest_edgeenergy calibrate --from-trace`` derives a profile's rates from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .plan import DeviceStats

__all__ = ["TRACE_FORMAT", "Event", "Trace"]

TRACE_FORMAT = "pytest-edgeenergy-trace/1"
"""The ``format`` field of a saved trace."""


@dataclass(frozen=True, slots=True)
class Event:
    """One step as one device saw it, in seconds since the run began.

    ``kind`` is ``task`` (``device`` computed ``macs``), ``send`` (``device`` posted ``bytes``
    for ``peer``; ``end_s`` is when it saw the send complete) or ``recv`` (``device`` posted a
    receive of ``bytes`` from ``peer`` at ``start_s``, and had the data at ``end_s``).
    Completion of a non-blocking transfer is observed between tasks, so ``end_s`` of a
    transfer is an upper bound (by at most the task that ran meanwhile).
    """

    device: int
    kind: str
    step: int
    start_s: float
    end_s: float
    macs: int = 0
    bytes: int = 0
    peer: int = -1

    @property
    def duration_s(self) -> float:
        """``end_s - start_s``."""
        return self.end_s - self.start_s


#: The per-device counts of a trace, named as :class:`DeviceStats` names them.
_COUNTS = ("macs", "bytes_sent", "bytes_received", "messages", "weight_bytes", "peak_bytes")


@dataclass(slots=True)
class Trace:
    """Per-device counts measured from the tensors a backend really computed and moved.

    ``timeline`` (empty for the local backend) holds every device's :class:`Event`;
    ``wall_s`` is the measured makespan: from the start of the run until device 0 held the
    output (0.0 when not measured). Neither takes part in :meth:`device_stats`.
    """

    n_devices: int
    macs: list[int] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    bytes_received: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    weight_bytes: list[int] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)
    backend: str = "local"
    timeline: list[Event] = field(default_factory=list)
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        for name in _COUNTS:
            if not getattr(self, name):
                setattr(self, name, [0] * self.n_devices)

    def set_device(self, d: int, stats: DeviceStats) -> None:
        """Set device ``d``'s counts to ``stats``, what the process that played it measured."""
        for name in _COUNTS:
            getattr(self, name)[d] = getattr(stats, name)

    def device_stats(self) -> list[DeviceStats]:
        """The measured counts, indexed by device (same fields as the plan's)."""
        return [DeviceStats(self.macs[d], self.bytes_sent[d], self.bytes_received[d],
                            self.messages[d], self.weight_bytes[d], self.peak_bytes[d])
                for d in range(self.n_devices)]

    # ---- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` restores an equal trace."""
        return {
            "format": TRACE_FORMAT, "n_devices": self.n_devices, "backend": self.backend,
            "wall_s": self.wall_s,
            "devices": [s.to_dict() for s in self.device_stats()],
            "timeline": [asdict(e) for e in self.timeline],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Trace:
        """Restore a trace from :meth:`to_dict` output; ``ValueError`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a pytest-edgeenergy trace (format={got!r}, expected "
                             f"{TRACE_FORMAT!r})")
        devices = data["devices"]
        trace = Trace(n_devices=int(data["n_devices"]), backend=str(data["backend"]),
                      wall_s=float(data["wall_s"]))
        for name in ("macs", "bytes_sent", "bytes_received", "messages", "weight_bytes",
                     "peak_bytes"):
            setattr(trace, name, [int(d[name]) for d in devices])
        trace.timeline = [Event(**e) for e in data["timeline"]]
        return trace

    @staticmethod
    def from_json(text: str) -> Trace:
        """Restore a trace from :meth:`to_json` text."""
        return Trace.from_dict(json.loads(text))
