"""``gloo_workers``: started gloo workers shared by the gloo tests of a session (a plugin module:
``pytest_plugins = ["gloo_pools"]`` in a test module)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pytest_edgeenergy.backends import GlooWorkers


@pytest.fixture(scope="session")
def gloo_workers() -> Iterator[Callable[[int], GlooWorkers]]:
    """Started gloo workers for a device count, shared by every test of the session.

    Starting them costs about 1.5 s per worker (each imports torch), and the gloo tests of
    several modules run plans of the same sizes. A test that breaks its workers on purpose
    (kills or stops one) may use them too: a later test gets new ones, as after any failure.
    """
    started: dict[int, GlooWorkers] = {}

    def get(n: int) -> GlooWorkers:
        if n not in started or not started[n].alive:
            started[n] = GlooWorkers(n)
        return started[n]

    yield get
    for workers in started.values():
        workers.close()
