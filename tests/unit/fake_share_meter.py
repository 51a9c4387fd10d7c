"""A fake meter that every process of a gloo run can open: ``share-fake``.

Imported through ``EDGEENERGY_METER_MODULES=fake_share_meter`` (with this folder on the
path), in the test process and in every rank process, it registers ``share-fake``: 0.1 W of
idle power plus :data:`J_PER_MAC` for each multiply-accumulate and :data:`J_PER_BYTE` for each
byte sent or received by *this process's* executors (it counts the calls of
``Executor.run_task``, ``sent`` and ``received``). So a rank measures exactly its own share:
``J_PER_MAC * macs[d] + J_PER_BYTE * (bytes_sent[d] + bytes_received[d])`` above idle, whatever
the host's load. Its numbers describe no hardware.

Parameters: ``share-fake:off=NAME`` makes it unavailable in the process called ``NAME``
(``edgeenergy-gloo-device-1`` is the spawned worker of device 1; ``edgeenergy-rank-1`` the
rank process of ``python -m pytest_edgeenergy worker --rank 1``); ``fail=NAME`` makes it fail
at its first stop in that process.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from pytest_edgeenergy.backends.local import Executor
from pytest_edgeenergy.meters import BOARD, Availability, MeterError, Reading, register_meter

IDLE_W = 0.1
J_PER_MAC = 1e-7
J_PER_BYTE = 1e-6
COUNT = [0.0]  # joules above idle counted in this process

_run_task, _sent, _received = Executor.run_task, Executor.sent, Executor.received


def _counted_run_task(self: Executor, task: Any) -> None:
    _run_task(self, task)
    COUNT[0] += J_PER_MAC * task.macs


def _counted_sent(self: Executor, transfer: Any, data: Any) -> None:
    _sent(self, transfer, data)
    COUNT[0] += J_PER_BYTE * data.numel() * data.element_size()


def _counted_received(self: Executor, transfer: Any, data: Any) -> None:
    _received(self, transfer, data)
    COUNT[0] += J_PER_BYTE * data.numel() * data.element_size()


Executor.run_task = _counted_run_task  # type: ignore[method-assign]
Executor.sent = _counted_sent  # type: ignore[method-assign]
Executor.received = _counted_received  # type: ignore[method-assign]


class ShareFakeMeter:
    """See the module docstring."""

    name = "share-fake"

    def __init__(self, off: str = "", fail: str = "") -> None:
        self.process = multiprocessing.current_process().name
        self.off = off == self.process
        self.fail = fail == self.process
        self._start = (0.0, 0.0)

    def available(self) -> Availability:
        if self.off:
            return Availability(False, f"share-fake is off in process {self.process}")
        return Availability(True, f"share-fake in process {self.process}")

    def start(self) -> None:
        self._start = (time.perf_counter(), COUNT[0])

    def stop(self) -> Reading:
        if self.fail:
            raise MeterError(f"share-fake failed on purpose in process {self.process}")
        wall0, count0 = self._start
        wall = time.perf_counter() - wall0
        return Reading(self.name, {BOARD: IDLE_W * wall + COUNT[0] - count0}, wall,
                       f"share-fake in process {self.process}")


register_meter("share-fake", ShareFakeMeter)
