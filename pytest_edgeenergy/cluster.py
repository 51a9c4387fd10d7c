"""Clusters: the ordered devices a model is partitioned across.

Device 0 is the camera: it holds the input and must end up with the output. A cluster
is a value: two clusters of equal profiles in the same order are equal and hash alike.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_edgeenergy.errors import PartitionError
from pytest_edgeenergy.profiles import DeviceProfile, is_profile_path, load_device

__all__ = ["DEFAULT_DEVICE", "MAX_DEVICES", "Cluster", "as_cluster"]

DEFAULT_DEVICE = "rpi4"
"""The device a bare device count (``--edge-devices=4``) means."""

MAX_DEVICES = 64
"""The most devices one cluster may hold; more is almost surely a typo."""

# "4xrpi4": a count, an "x", then a device name (which itself starts with a letter).
_REPEAT = re.compile(r"\s*([+-]?\d+)\s*x\s*(.*?)\s*", re.IGNORECASE)


def _check_count(value: object, what: str = "device count") -> int:
    """Return ``value`` as a device count, or raise PartitionError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PartitionError(f"{what} must be an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise PartitionError(f"{what} must be at least 1, got {value}")
    if value > MAX_DEVICES:
        raise PartitionError(f"{what} must be at most {MAX_DEVICES}, got {value}")
    return value


@dataclasses.dataclass(frozen=True, repr=False)
class Cluster:
    """An ordered, non-empty tuple of device profiles; device 0 holds input and output."""

    devices: tuple[DeviceProfile, ...]

    def __post_init__(self) -> None:
        """Check the device list and store it as a tuple."""
        devices = tuple(self.devices)
        if not devices:
            raise PartitionError("a cluster needs at least 1 device, got 0")
        if len(devices) > MAX_DEVICES:
            raise PartitionError(
                f"a cluster holds at most {MAX_DEVICES} devices, got {len(devices)}"
            )
        for index, device in enumerate(devices):
            if not isinstance(device, DeviceProfile):
                raise PartitionError(
                    f"cluster device {index} must be a DeviceProfile, "
                    f"got {device!r} ({type(device).__name__})"
                )
        object.__setattr__(self, "devices", devices)

    @classmethod
    def homogeneous(
        cls,
        name_or_profile: str | Path | DeviceProfile,
        n: int,
        search_dirs: Sequence[Path] = (),
    ) -> Cluster:
        """Return a cluster of ``n`` identical devices (a profile, or a name or path to load)."""
        count = _check_count(n)
        profile = (
            name_or_profile
            if isinstance(name_or_profile, DeviceProfile)
            else load_device(name_or_profile, search_dirs)
        )
        return cls((profile,) * count)

    @classmethod
    def parse(cls, spec: str, search_dirs: Sequence[Path] = ()) -> Cluster:
        """Build a cluster from a spec such as ``"rpi4,rpi4,jetson-nano-10w"`` or ``"4xrpi4"``.

        Items are separated by commas, or by ``+`` as in a cluster's :attr:`signature`
        (``"rpi4+jetson-nano-10w"``; not inside a profile path, which may hold a ``+``); each
        is a device name (or profile path) or ``<count>x<name>``, so
        ``"2xrpi4,jetson-nano-10w"`` is three devices. The first device listed is device 0.
        """
        if not spec.strip():
            raise PartitionError(
                f"empty cluster spec {spec!r}: expected device names separated by commas, "
                "such as 'rpi4,jetson-nano-10w', or a count and a name, such as '4xrpi4'"
            )
        items = [part for item in spec.split(",")
                 for part in ([item] if is_profile_path(item.strip()) else item.split("+"))]
        devices: list[DeviceProfile] = []
        for position, raw in enumerate(items, start=1):
            item = raw.strip()
            where = f"item {position} of cluster spec {spec!r}"
            if not item:
                raise PartitionError(f"empty device name at {where}")
            count = 1
            repeat = _REPEAT.fullmatch(item)
            if repeat:
                count = _check_count(int(repeat.group(1)), f"device count in {where}")
                item = repeat.group(2)
                if not item:
                    raise PartitionError(f"empty device name after the count at {where}")
            devices.extend([load_device(item, search_dirs)] * count)
            if len(devices) > MAX_DEVICES:
                raise PartitionError(f"cluster spec {spec!r} names more than {MAX_DEVICES} devices")
        return cls(tuple(devices))

    def __repr__(self) -> str:
        """Show the cluster by its signature, e.g. ``Cluster('4xrpi4')``."""
        return f"{type(self).__name__}({self.signature!r})"

    def __len__(self) -> int:
        """Return the number of devices."""
        return len(self.devices)

    def __getitem__(self, index: int) -> DeviceProfile:
        """Return device ``index`` (negative indices count from the end)."""
        return self.devices[index]

    def __iter__(self) -> Iterator[DeviceProfile]:
        """Iterate over the devices, device 0 first."""
        return iter(self.devices)

    @property
    def speeds(self) -> tuple[float, ...]:
        """Each device's ``macs_per_s`` relative to the fastest device's (which is 1.0)."""
        fastest = max(device.macs_per_s for device in self.devices)
        return tuple(device.macs_per_s / fastest for device in self.devices)

    @property
    def is_homogeneous(self) -> bool:
        """Whether every device has the same profile."""
        return all(device == self.devices[0] for device in self.devices)

    @property
    def signature(self) -> str:
        """A stable, readable id: ``"4xrpi4"`` if all devices are alike, else ``"a+b+c"``.

        Used in test ids and baseline keys; it names devices, not their figures.
        """
        if self.is_homogeneous:
            return f"{len(self)}x{self.devices[0].name}"
        return "+".join(device.name for device in self.devices)

    def _device(self, index: int) -> DeviceProfile:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"a device index must be an int, got {index!r}")
        if not 0 <= index < len(self):
            raise IndexError(
                f"device {index} is not in this {len(self)}-device cluster {self.signature}"
            )
        return self.devices[index]

    def _link(self, a: int, b: int) -> tuple[DeviceProfile, DeviceProfile]:
        first, second = self._device(a), self._device(b)
        if a == b:
            raise PartitionError(
                f"a transfer needs two different devices, got device {a} to itself"
            )
        return first, second

    def link_bytes_per_s(self, a: int, b: int) -> float:
        """The rate of a transfer between devices ``a`` and ``b``: the slower device's rate."""
        first, second = self._link(a, b)
        return min(first.net_bytes_per_s, second.net_bytes_per_s)

    def link_latency_s(self, a: int, b: int) -> float:
        """The fixed latency of a transfer between devices ``a`` and ``b``: the larger one."""
        first, second = self._link(a, b)
        return max(first.net_latency_s, second.net_latency_s)

    def to_dict(self) -> dict[str, Any]:
        """Return the cluster as a JSON-able dict, for reports and baselines."""
        return {
            "signature": self.signature,
            "devices": [device.to_dict() for device in self.devices],
        }


def as_cluster(value: int | str | Cluster, search_dirs: Sequence[Path] = ()) -> Cluster:
    """Return ``value`` as a cluster.

    A Cluster is returned as it is; an int ``n`` means ``n`` devices of
    :data:`DEFAULT_DEVICE`; a string of digits is read as that int, and any other string
    as a :meth:`Cluster.parse` spec.
    """
    if isinstance(value, Cluster):
        return value
    if isinstance(value, str):
        if value.strip().lstrip("+-").isdigit():
            return Cluster.homogeneous(DEFAULT_DEVICE, _check_count(int(value)), search_dirs)
        return Cluster.parse(value, search_dirs)
    return Cluster.homogeneous(DEFAULT_DEVICE, _check_count(value), search_dirs)
