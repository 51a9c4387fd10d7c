"""The random CNNs of the property tests draw the ops of modern edge CNNs too, and a random CNN
made of them partitions exactly under every strategy."""

from __future__ import annotations

import pytest
import torch
from hypothesis import Phase, find, settings

from pytest_edgeenergy import partition
from pytest_edgeenergy.randomcnn import Block, CNNSpec, RandomCNN, cnn_specs

NEW_KINDS = ["se", "upsample", "shuffle", "split"]


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_the_random_cnn_strategy_draws_each_new_block_kind(kind: str) -> None:
    # The first drawn spec with the kind is enough: shrinking it to a minimal one (hypothesis'
    # default for find) would only spend time, the assertion is about the drawing.
    spec = find(cnn_specs(), lambda s: any(b.kind == kind for b in s.blocks),
                settings=settings(database=None, max_examples=2000, phases=[Phase.generate]))
    assert any(b.kind == kind for b in spec.blocks)


SPEC = CNNSpec((1, 4, 11, 9), (
    Block("conv", 8, kernel=3, padding=1, bn=True, act="mish"),
    Block("se", pool="avg", act="hardsigmoid"),
    Block("shuffle", groups=4),
    Block("split", kernel=3, bn=True, act="gelu"),
    Block("upsample", pool="bilinear", ceil_mode=True, pads=(17, 20, 0, 0)),
    Block("conv", 6, kernel=3, stride=2, act="tanh"),
    Block("se", pool="max", act="sigmoid"),
    Block("upsample", pool="nearest", stride=2),
))


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("strategy", ["layer", "spatial", "output-channel", "input-channel"])
def test_a_random_cnn_of_the_new_blocks_partitions_exactly(strategy: str, n: int) -> None:
    model = RandomCNN(SPEC)
    x = torch.randn(SPEC.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, strategy, n, SPEC.input_shape)
    torch.testing.assert_close(pm(x), ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert pm.trace.device_stats() == pm.plan.device_stats()
