"""Rank 0 in this process and rank 1 as ``python -m pytest_edgeenergy worker`` (what a user
runs on another host), meeting through env:// on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

from pytest_edgeenergy.backends.remote import RemoteWorkers
from pytest_edgeenergy.backends.rendezvous import Rendezvous


@contextlib.contextmanager
def remote_rank() -> Iterator[RemoteWorkers]:
    """Start the worker rank (with this process's environment), yield rank 0's workers, and
    check that the worker ended with rank 0's session."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = int(s.getsockname()[1])
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
               OMP_NUM_THREADS="1")
    worker = subprocess.Popen([sys.executable, "-m", "pytest_edgeenergy", "worker", "--rank",
                               "1", "--join-timeout", "60"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        with RemoteWorkers(Rendezvous("127.0.0.1", port, 2, join_timeout_s=90,
                                      timeout_s=60)) as workers:
            yield workers
        worker.wait(timeout=30)  # it ends with rank 0's session
        assert worker.returncode == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, 9)
        worker.wait(timeout=10)
