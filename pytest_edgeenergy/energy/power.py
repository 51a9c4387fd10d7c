"""Power states: what a device draws outside its active intervals under ``power=sleep``.

Under ``power=always-on`` a device draws ``idle_w`` for the whole window (the makespan of one
image, or the period of a stream), which is the energy model's own ``static_j``. Under
``power=sleep`` the window is a circle (the time after a device's last activity joins the
time before its first one in the next window) and:

* a device is **active** while one of its tasks runs or its interface carries one of its
  transfers; in a stream, image k's schedule is image 0's shifted by k periods, so its
  activity in one period is the union of its intervals taken modulo the period;
* while active it draws ``idle_w`` (plus the energy model's compute and communication terms);
* each gap of ``g`` seconds between active intervals costs the cheaper of staying on,
  ``idle_w * g``, and sleeping, ``sleep_w * (g - wake_s) + wake_j`` (only if ``g >= wake_s``:
  waking takes ``wake_s`` and ``wake_j`` is the whole energy of one wake-up). The static
  schedule is known in advance, so a device is woken ``wake_s`` before it is needed and
  waking delays nothing;
* a device with no activity at all sleeps through the whole window, ``sleep_w * window``,
  and is never woken.

``static_j = idle_w * active_s + sum of the gap costs``. With ``sleep_w = idle_w`` and
``wake_s = wake_j = 0`` this is ``idle_w * window``, the always-on figure.
"""

from __future__ import annotations

import dataclasses
import itertools

from ..plan import Plan, Task
from ..profiles import DeviceProfile
from .errors import EnergyError
from .schedule import Schedule

__all__ = ["SleepEnergy", "active_intervals", "check_sleep_fields", "sleep_energy"]

_SLEEP_FIELDS = ("sleep_w", "wake_s", "wake_j")


@dataclasses.dataclass(frozen=True, slots=True)
class SleepEnergy:
    """One device's static energy under ``power=sleep``, and how it was spent."""

    static_j: float
    active_s: float  # the union of its active intervals within the window
    asleep_s: float  # time spent asleep (wake-ups excluded)
    wakes: int  # wake-ups per window


def check_sleep_fields(profile: DeviceProfile, index: int) -> None:
    """Raise :class:`EnergyError` unless ``profile`` gives every power-state figure."""
    missing = [f for f in _SLEEP_FIELDS if getattr(profile, f) is None]
    if missing:
        where = f" ({profile.path})" if profile.path else ""
        raise EnergyError(
            f"scenario power=sleep needs {', '.join(missing)} in the profile of device {index}, "
            f"'{profile.name}'{where}: add the figures (each with its source) or use "
            f"power=always-on")


def active_intervals(plan: Plan, schedule: Schedule, device: int) -> list[tuple[float, float]]:
    """Device ``device``'s busy intervals: its tasks, and the transfers it sends or receives."""
    out = []
    for step, start, end in zip(plan.steps, schedule.step_start_s, schedule.step_end_s,
                                strict=True):
        mine = step.device == device if isinstance(step, Task) else device in (step.src,
                                                                                step.dst)
        if mine and end > start:
            out.append((start, end))
    return out


def _fold(intervals: list[tuple[float, float]], window_s: float) -> list[tuple[float, float]]:
    """The union of ``intervals`` taken modulo ``window_s``, sorted and merged."""
    pieces: list[tuple[float, float]] = []
    for start, end in intervals:
        if end - start >= window_s:
            return [(0.0, window_s)]
        a = start % window_s
        b = a + (end - start)
        if b <= window_s:
            pieces.append((a, b))
        else:
            pieces += [(a, window_s), (0.0, b - window_s)]
    pieces.sort()
    merged: list[tuple[float, float]] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def sleep_energy(profile: DeviceProfile, intervals: list[tuple[float, float]],
                 window_s: float) -> SleepEnergy:
    """The static energy of a device with these active intervals over a circular window."""
    sleep_w, wake_s, wake_j = profile.sleep_w, profile.wake_s, profile.wake_j
    if sleep_w is None or wake_s is None or wake_j is None:
        raise EnergyError(f"profile '{profile.name}' lacks the power-state figures "
                          f"{', '.join(_SLEEP_FIELDS)}")
    if window_s <= 0:
        return SleepEnergy(0.0, 0.0, 0.0, 0)
    merged = _fold(intervals, window_s)
    if not merged:
        return SleepEnergy(sleep_w * window_s, 0.0, window_s, 0)
    active_s = sum(b - a for a, b in merged)
    gaps = [nxt[0] - cur[1] for cur, nxt in itertools.pairwise(merged)]
    gaps.append(window_s - merged[-1][1] + merged[0][0])
    static_j, asleep_s, wakes = profile.idle_w * active_s, 0.0, 0
    for gap in gaps:
        stay_j = profile.idle_w * gap
        if gap >= wake_s and gap > 0:
            sleep_j = sleep_w * (gap - wake_s) + wake_j
            if sleep_j < stay_j:
                static_j += sleep_j
                asleep_s += gap - wake_s
                wakes += 1
                continue
        static_j += stay_j
    return SleepEnergy(static_j, active_s, asleep_s, wakes)
