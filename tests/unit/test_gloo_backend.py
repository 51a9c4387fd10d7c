"""The gloo backend: one process per device computes what the model and the local backend
compute, measures what its plan says, fails loudly and quickly, and stays on 127.0.0.1.

Worker processes take ~1.5 s to start (each imports torch), so the equivalence cases share one
:class:`GlooWorkers` per device count with the session (``gloo_workers``, gloo_pools.py); tests of
failures start their own, since a failure kills the workers.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import pytest
import torch
from torch import nn

from pytest_edgeenergy import PartitionError, build_model, model_input_shape, partition
from pytest_edgeenergy.backends import GlooWorkers, run_gloo
from pytest_edgeenergy.backends.gloo import LOOPBACK
from pytest_edgeenergy.plan import Task
from pytest_edgeenergy.randomcnn import Block, CNNSpec, RandomCNN

pytest_plugins = ["gloo_pools"]  # the session's gloo_workers

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]

# A small random CNN with a batch of 2 and every kind of block the property test draws except
# reorg and pad: BatchNorm, a ceil-mode max-pool, a grouped dilated residual, a two-branch
# concat, a strided depthwise conv, an avg-pool excluding its padding, a pooled Linear head.
RANDOM_SPEC = CNNSpec(
    input_shape=(2, 3, 19, 22),
    blocks=(
        Block("conv", 8, kernel=3, stride=1, padding=1, bn=True, act="relu"),
        Block("pool", kernel=3, stride=2, padding=1, pool="max", ceil_mode=True),
        Block("residual", 8, kernel=3, dilation=2, groups=2, bn=True, act="leaky_relu"),
        Block("concat", 6, kernel=3, act="silu"),
        Block("conv", 12, kernel=5, stride=2, padding=2, groups=12, act="hardswish"),
        Block("pool", kernel=2, stride=1, padding=1, pool="avg", count_include_pad=False),
    ),
    head=7, head_pool=2, seed=11, notes={"head_in": 12 * 2 * 2})

Case = tuple[nn.Module, torch.Tensor, torch.Tensor]  # model, input, reference output


@functools.cache
def case(name: str) -> Case:
    """The model, a fixed input and the unpartitioned output."""
    if name == "tinycnn":
        model: nn.Module = build_model("tinycnn")
        shape = tuple(model_input_shape("tinycnn"))
    else:
        model = RandomCNN(RANDOM_SPEC)
        shape = RANDOM_SPEC.input_shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(x)
    return model, x, ref


def assert_equivalent(out: torch.Tensor, ref: torch.Tensor) -> None:
    """The project's fp32 tolerance for partitioned outputs."""
    atol = 1e-5 * max(1.0, float(ref.abs().max()))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=atol)


EQUIVALENCE_CASES = [(model, strategy, n) for model in ("tinycnn", "random-cnn")
                     for n in (2, 3) for strategy in STRATEGIES] + [("random-cnn", "spatial", 4)]


@pytest.mark.parametrize(("model_name", "strategy", "n"), EQUIVALENCE_CASES)
def test_gloo_computes_what_the_model_and_the_local_backend_compute_and_measures_its_plan(
        gloo_workers: Callable[[int], GlooWorkers], model_name: str, strategy: str, n: int) -> None:
    model, x, ref = case(model_name)
    pm = partition(model, strategy, n, x.shape)
    local_out = pm(x)
    out, trace = run_gloo(pm.plan, pm.graph, x, workers=gloo_workers(n))
    assert out.shape == ref.shape
    assert_equivalent(out, ref)
    assert_equivalent(out, local_out)
    assert trace.backend == "gloo"
    assert trace.device_stats() == pm.plan.device_stats()
    assert trace.device_stats() == pm.trace.device_stats()


def test_a_partitioned_model_runs_on_gloo_when_asked_at_partition_time_or_later() -> None:
    model, x, ref = case("tinycnn")
    assert partition(model, "layer", 2, x.shape, backend="gloo").backend == "gloo"
    pm = partition(model, "output-channel", 2, x.shape)
    local_out = pm(x)
    assert pm.trace.backend == "local"
    pm.backend = "gloo"
    out = pm(x)
    assert pm.trace.backend == "gloo"
    assert_equivalent(out, ref)
    assert_equivalent(out, local_out)
    assert pm.trace.device_stats() == pm.plan.device_stats()


def test_an_unknown_backend_is_a_partition_error_listing_the_known_ones() -> None:
    model, x, _ = case("tinycnn")
    with pytest.raises(PartitionError, match=r"unknown backend 'mpi'; known backends: local, gloo"):
        partition(model, "layer", 2, x.shape, backend="mpi")
    pm = partition(model, "layer", 2, x.shape)
    with pytest.raises(PartitionError, match=r"known backends: local, gloo"):
        pm.backend = "cuda"
    assert pm.backend == "local"


def test_workers_refuse_a_plan_for_another_device_count_and_a_wrong_input(
        gloo_workers: Callable[[int], GlooWorkers]) -> None:
    model, x, _ = case("tinycnn")
    pool = gloo_workers(2)
    pm = partition(model, "spatial", 3, x.shape)
    with pytest.raises(PartitionError, match=r"plan for 3 devices cannot run on 2 gloo workers"):
        pool.run(pm.plan, pm.graph, x)
    pm = partition(model, "spatial", 2, x.shape)
    with pytest.raises(PartitionError, match=r"does not match the planned input shape"):
        pool.run(pm.plan, pm.graph, x[:, :, :16])
    assert pool.alive  # refused before anything was sent
    with pytest.raises(PartitionError, match=r"device count \(at least one device\) must be an "
                                             r"integer from 1 to 64, got 0"):
        GlooWorkers(0)


def test_a_task_that_cannot_run_fails_quickly_with_one_error_naming_the_device() -> None:
    model, x, _ = case("tinycnn")
    pm = partition(model, "output-channel", 2, x.shape)
    plan = pm.plan
    i, task = next((i, s) for i, s in enumerate(plan.steps)
                   if isinstance(s, Task) and s.device == 1)
    plan.steps[i] = dataclasses.replace(task, layer="no_such_layer")
    t0 = time.monotonic()
    with pytest.raises(PartitionError) as info:
        run_gloo(plan, pm.graph, x, timeout_s=120)
    elapsed_s = time.monotonic() - t0
    message = str(info.value)
    assert message.startswith(f"gloo backend: device 1 failed at step {i} (task "
                              f"'no_such_layer' (compute) on device 1):\nTraceback")
    assert "Traceback (most recent call last)" in message
    assert "PlanExecutionError: step" in message and "names layer 'no_such_layer'" in message
    assert elapsed_s < 30  # start-up plus the failure, not the 120 s timeout


@pytest.mark.heavy  # a swarm of worker processes, and timeouts
def test_a_worker_that_dies_is_reported_with_its_signal_and_the_others_are_killed() -> None:
    model, x, _ = case("tinycnn")
    pm = partition(model, "output-channel", 2, x.shape)
    with GlooWorkers(2, timeout_s=60) as pool:
        os.kill(pool.pids[1], signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(PartitionError, match=r"device 1 failed while running:\n"
                                                 r"its worker process \(pid \d+\) was killed by "
                                                 r"signal SIGKILL"):
            pool.run(pm.plan, pm.graph, x)
        assert time.monotonic() - t0 < 10
        assert not pool.alive
        assert all(code is not None for code in pool.exitcodes)
        with pytest.raises(PartitionError, match=r"cannot run: stopped after a failure"):
            pool.run(pm.plan, pm.graph, x)


@pytest.mark.heavy  # a swarm of worker processes, and timeouts
def test_a_worker_that_hangs_times_out_and_every_worker_is_killed() -> None:
    model, x, _ = case("tinycnn")
    pm = partition(model, "output-channel", 2, x.shape)
    with GlooWorkers(2, timeout_s=60) as pool:
        os.kill(pool.pids[1], signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(PartitionError, match=r"device\(s\) 0, 1 gave no result within 1 s"):
            pool.run(pm.plan, pm.graph, x, timeout_s=1.0)
        assert time.monotonic() - t0 < 10
        assert all(code is not None for code in pool.exitcodes)


@pytest.mark.heavy  # a swarm of worker processes, and timeouts
def test_workers_are_reused_across_runs_and_graphs_and_stop_cleanly() -> None:
    tiny, x_tiny, ref_tiny = case("tinycnn")
    rand, x_rand, ref_rand = case("random-cnn")
    with GlooWorkers(2, timeout_s=60) as pool:
        pids = pool.pids
        for model, x, ref in [(tiny, x_tiny, ref_tiny), (rand, x_rand, ref_rand),
                              (tiny, x_tiny, ref_tiny)]:
            pm = partition(model, "spatial", 2, x.shape)
            for _ in range(2):  # the second run reuses the graph the workers cached
                out, _trace = pool.run(pm.plan, pm.graph, x)
                assert_equivalent(out, ref)
        assert pool.pids == pids
        assert pool.exitcodes == [None, None]
    assert pool.exitcodes == [0, 0]


def _endpoint(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """An address of /proc/net/tcp{,6}: hex bytes in 32-bit little-endian words, hex port."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(port, 16)


def _tcp_sockets(pid: int) -> list[tuple[str, tuple[object, int], tuple[object, int]]]:
    """(state, local, remote) of every TCP socket process ``pid`` has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    found: list[tuple[str, tuple[object, int], tuple[object, int]]] = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    state = "LISTEN" if fields[3] == "0A" else fields[3]
                    found.append((state, _endpoint(fields[1]), _endpoint(fields[2])))
    return found


@pytest.mark.heavy  # a swarm of worker processes
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/net/tcp")
def test_every_socket_of_the_workers_is_on_127_0_0_1(
        gloo_workers: Callable[[int], GlooWorkers]) -> None:
    model, x, _ = case("random-cnn")
    pool = gloo_workers(3)
    pm = partition(model, "input-channel", 3, x.shape)
    pool.run(pm.plan, pm.graph, x)
    loopback = ipaddress.ip_address("127.0.0.1")
    listening: list[int] = []
    for pid in pool.pids:
        sockets = _tcp_sockets(pid)
        assert sockets, f"worker {pid} has no TCP socket"
        for state, (local_ip, local_port), (remote_ip, _) in sockets:
            assert local_ip == loopback, (pid, state, local_ip)
            if state == "LISTEN":
                listening.append(local_port)
            else:
                assert remote_ip == loopback, (pid, state, remote_ip)
    assert pool.port in listening  # device 0's rendezvous store, bound to 127.0.0.1 too


@pytest.mark.heavy  # a swarm of worker processes, and timeouts
def test_an_explicit_port_is_used_and_a_busy_one_is_a_clear_error() -> None:
    model, x, ref = case("tinycnn")
    pm = partition(model, "layer", 1, x.shape)
    with socket.create_server((LOOPBACK, 0)) as busy:
        port = int(busy.getsockname()[1])
        with pytest.raises(PartitionError, match=r"(?s)device 0 failed while joining the process "
                                                 r"group:.*Address already in use"):
            GlooWorkers(1, port=port, timeout_s=60)
    with GlooWorkers(1, port=port, timeout_s=60) as pool:  # free again
        assert pool.port == port
        out, trace = pool.run(pm.plan, pm.graph, x)
    assert_equivalent(out, ref)
    assert trace.device_stats() == pm.plan.device_stats()
