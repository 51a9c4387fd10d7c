"""Timing shared by the benchmarks, and their way of printing tables at the end of a run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch


def best_of(fn: Callable[[], object], rounds: int) -> float:
    """The shortest wall time of ``rounds`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def print_at_end(request: pytest.FixtureRequest, write: Callable[[Any], None]) -> None:
    """Call ``write`` with pytest's terminal reporter, output capture off (from the end of a
    module-scoped fixture, so a benchmark's table prints after its cases)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        write(reporter)
