"""A pooling layer after channel-split layers pools the channels each device already holds.

Under ``output-channel`` and ``input-channel`` a pool follows its input's channel slices: each
device pools its own channels, whole planes, and nothing is gathered for it. (Before, a pool
could not follow, and every pool ran whole on device 0 after a gather of its whole input.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from pytest_edgeenergy import partition
from pytest_edgeenergy.backends.local import run_local
from pytest_edgeenergy.plan import Task, Transfer

POOLS: dict[str, Callable[[], nn.Module]] = {
    "max k3 s2 p1": lambda: nn.MaxPool2d(3, 2, 1),
    "max k2 s2": lambda: nn.MaxPool2d(2),
    "max k3 s2 ceil": lambda: nn.MaxPool2d(3, 2, ceil_mode=True),
    "avg k2 s2": lambda: nn.AvgPool2d(2),
    "avg k3 s1 p1 without pad": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
}


def _model(pool: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), pool,
                         nn.Conv2d(12, 8, 3, padding=1), nn.ReLU()).eval()


@pytest.mark.parametrize("strategy", ["output-channel", "input-channel"])
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_pool_after_a_channel_split_pools_each_devices_own_channels(pool: str,
                                                                     strategy: str) -> None:
    model = _model(POOLS[pool]())
    pm = partition(model, strategy, 3, (1, 3, 17, 17))
    layer = next(x for x in pm.graph.layers if x.op.kind == "pool")
    assert pm.plan.notes[layer.name] == "follows its input's channel slices"
    tasks = [s for s in pm.plan.steps if isinstance(s, Task) and s.layer == layer.name]
    assert sorted(t.device for t in tasks) == [0, 1, 2]
    boxes = [pm.plan.pieces[t.out].box for t in tasks]
    assert sorted(b.ranges[0] for b in boxes) == [(0, 4), (4, 8), (8, 12)]
    assert all(b.ranges[1:] == ((0, layer.out_shape[1]), (0, layer.out_shape[2]))
               for b in boxes)
    pool_input = layer.inputs[0]
    moved = [s for s in pm.plan.steps
             if isinstance(s, Transfer) and pm.plan.pieces[s.src_piece].tensor == pool_input]
    assert moved == []  # each device pools what it holds; nothing is gathered for the pool
    x = torch.randn(1, 3, 17, 17)
    out, trace = run_local(pm.plan, pm.graph, x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-5)
    assert trace.device_stats() == pm.plan.device_stats()
