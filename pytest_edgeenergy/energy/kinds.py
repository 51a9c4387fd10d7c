"""Which kind of layer a task computes, for a profile's per-kind throughput table.

The kinds are the keys of ``[macs_per_s_by_kind]`` in a device profile
(:data:`~pytest_edgeenergy.profiles.LAYER_KINDS`):

* ``conv``: a dense convolution with a kernel larger than 1x1 (groups = 1);
* ``pointwise``: a 1x1 convolution (groups = 1);
* ``depthwise``: a grouped convolution (groups > 1; depthwise is groups = channels);
* ``linear``: a fully connected layer;
* ``elementwise``: everything else (activations, additions, pools, concatenations,
  reductions of partial sums). Plans count no MACs for these, so their duration is their
  memory time whatever the table says.

The kind comes from the plan's own description of each layer (``Plan.layer_kinds``, written by
each op's ``describe()``), so an estimate needs nothing but the plan.
"""

from __future__ import annotations

import re

from ..plan import Plan, Task
from ..profiles import DeviceProfile

__all__ = ["layer_kind", "task_kind", "task_macs_per_s"]

_CONV = re.compile(r"conv \d+->\d+ k(\d+)x(\d+)\b(?:.*groups=(\d+))?")


def layer_kind(description: str) -> str:
    """The kind of a layer from its description, e.g. ``"conv 32->32 k3x3 s1 p1, groups=32"``
    is ``depthwise``."""
    conv = _CONV.match(description)
    if conv:
        groups = int(conv.group(3) or 1)
        if groups > 1:
            return "depthwise"
        return "pointwise" if conv.group(1) == conv.group(2) == "1" else "conv"
    if description.startswith("linear "):
        return "linear"
    return "elementwise"


def task_kind(task: Task, plan: Plan) -> str:
    """The kind of ``task``'s layer; a reduction of partial sums is ``elementwise``."""
    if task.kind == "reduce":
        return "elementwise"
    return layer_kind(plan.layer_kinds.get(task.layer, ""))


def task_macs_per_s(task: Task, plan: Plan, profile: DeviceProfile, per_kind: bool) -> float:
    """The MAC rate ``task`` runs at on ``profile``: its kind's rate from the profile's table
    when ``per_kind`` and the table has that kind, else ``macs_per_s``."""
    if per_kind and profile.macs_per_s_by_kind:
        return profile.kind_rates().get(task_kind(task, plan), profile.macs_per_s)
    return profile.macs_per_s
