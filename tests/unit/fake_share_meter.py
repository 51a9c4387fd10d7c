"""Fake meters that every process can open: ``share-fake`` for gloo ranks, ``net-fake`` for
``calibrate --meter`` with two hosts (below).

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
at its first stop in that process (a MeterError); ``crash=NAME`` makes its start raise a
RuntimeError there, as a broken meter plugin would.
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

    def __init__(self, off: str = "", fail: str = "", crash: str = "") -> None:
        self.process = multiprocessing.current_process().name
        self.off = off == self.process
        self.fail = fail == self.process
        self.crash = crash == self.process
        self._start = (0.0, 0.0)

    def available(self) -> Availability:
        if self.off:
            return Availability(False, f"share-fake is off in process {self.process}")
        return Availability(True, f"share-fake in process {self.process}")

    def start(self) -> None:
        if self.crash:
            raise RuntimeError(f"share-fake crashed on purpose in process {self.process}")
        self._start = (time.perf_counter(), COUNT[0])

    def stop(self) -> Reading:
        if self.fail:
            raise MeterError(f"share-fake failed on purpose in process {self.process}")
        wall0, count0 = self._start
        wall = time.perf_counter() - wall0
        return Reading(self.name, {BOARD: IDLE_W * wall + COUNT[0] - count0}, wall,
                       f"share-fake in process {self.process}")


register_meter("share-fake", ShareFakeMeter)


# ---- net-fake: for calibrate --meter with two hosts ----------------------------------------

NET_IDLE_W = 0.5
TX_J_PER_BYTE = 2e-9
RX_J_PER_BYTE = 1e-9
LOAD_J = 4e-3  # per call of the stand-in calibration load (2 ms asleep)
NET_COUNT = [0.0]
PATCHED: list[bool] = []


def _patch_network() -> None:
    from pytest_edgeenergy.backends.rendezvous import GroupComm
    from pytest_edgeenergy.meters import calibrate

    isend, irecv = GroupComm.isend, GroupComm.irecv

    def counted_isend(self: GroupComm, tensor: Any, dst: int, tag: int) -> Any:
        NET_COUNT[0] += TX_J_PER_BYTE * tensor.numel() * tensor.element_size()
        return isend(self, tensor, dst, tag)

    def counted_irecv(self: GroupComm, tensor: Any, src: int, tag: int) -> Any:
        NET_COUNT[0] += RX_J_PER_BYTE * tensor.numel() * tensor.element_size()
        return irecv(self, tensor, src, tag)

    def load() -> Any:
        def run() -> None:
            time.sleep(0.002)
            NET_COUNT[0] += LOAD_J
        return run

    GroupComm.isend = counted_isend  # type: ignore[method-assign]
    GroupComm.irecv = counted_irecv  # type: ignore[method-assign]
    calibrate.conv_load = load


class NetFakeMeter:
    """0.5 W idle, plus 2 nJ per byte this process sends and 1 nJ per byte it receives over
    gloo (``GroupComm``, the agreement's few bytes included), plus 4 mJ per call of the
    calibration load, which it replaces with a 2 ms sleep."""

    name = "net-fake"

    def __init__(self) -> None:
        if not PATCHED:  # only in the process that opens it (a calibrate subprocess)
            _patch_network()
            PATCHED.append(True)
        self._start = (0.0, 0.0)

    def available(self) -> Availability:
        return Availability(True, "net-fake")

    def start(self) -> None:
        self._start = (time.perf_counter(), NET_COUNT[0])

    def stop(self) -> Reading:
        wall0, count0 = self._start
        wall = time.perf_counter() - wall0
        return Reading(self.name, {BOARD: NET_IDLE_W * wall + NET_COUNT[0] - count0}, wall,
                       "net-fake")


register_meter("net-fake", NetFakeMeter)
