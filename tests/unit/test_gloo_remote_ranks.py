"""Rank 0 in this process, a worker rank started as ``python -m pytest_edgeenergy worker``
(what a user runs on another host), meeting through env:// on 127.0.0.1: every strategy
computes what the local backend computes, measures its plan (the worker holding only its own
weight slices, checked on its side), and records a timeline of both devices. The heavy,
user-level tests (shell script, 2 and 4 ranks, faults) are in tests/plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from remote_rank import remote_rank

from pytest_edgeenergy import PartitionError, build_model, model_input_shape, partition
from pytest_edgeenergy.backends.remote import RemoteWorkers
from pytest_edgeenergy.backends.rendezvous import Rendezvous

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteWorkers]:
    with remote_rank() as workers:
        yield workers


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_worker_rank_computes_and_measures_the_plan(remote: RemoteWorkers,
                                                      strategy: str) -> None:
    model = build_model("tinycnn")
    shape = model_input_shape("tinycnn")
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    pm = partition(model, strategy, 2, shape)
    local_out = pm(x)
    out, trace = remote.run(pm.plan, pm.graph, x)
    torch.testing.assert_close(out, local_out, rtol=0, atol=1e-5 * float(local_out.abs().max()))
    assert trace.device_stats() == pm.plan.device_stats() == pm.trace.device_stats()
    assert {e.device for e in trace.timeline} == {0, 1}
    assert sum(e.kind == "task" for e in trace.timeline) == len(pm.plan.tasks)
    assert trace.wall_s > 0


def test_a_plan_of_another_size_is_refused(remote: RemoteWorkers) -> None:
    model = build_model("tinycnn")
    shape = model_input_shape("tinycnn")
    pm = partition(model, "layer", 3, shape)
    with pytest.raises(PartitionError, match=r"plan for 3 devices cannot run on a world of 2"):
        remote.run(pm.plan, pm.graph, torch.zeros(shape))


def test_missing_rendezvous_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(PartitionError, match=r"MASTER_ADDR, MASTER_PORT, WORLD_SIZE not set"):
        Rendezvous.from_env()
