"""The Trace: what a backend measured while executing a plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from .plan import DeviceStats


@dataclass(slots=True)
class Trace:
    """Per-device counts measured from the tensors a backend really computed and moved."""

    n_devices: int
    macs: list[int] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    bytes_received: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    weight_bytes: list[int] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)
    backend: str = "local"

    def __post_init__(self) -> None:
        for name in ("macs", "bytes_sent", "bytes_received", "messages", "weight_bytes",
                     "peak_bytes"):
            if not getattr(self, name):
                setattr(self, name, [0] * self.n_devices)

    def device_stats(self) -> list[DeviceStats]:
        """The measured counts, indexed by device (same fields as the plan's)."""
        return [DeviceStats(self.macs[d], self.bytes_sent[d], self.bytes_received[d],
                            self.messages[d], self.weight_bytes[d], self.peak_bytes[d])
                for d in range(self.n_devices)]
