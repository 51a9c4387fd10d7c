"""One process at a time in a folder: an exclusive lock for a read-then-write that must not
interleave (choosing the next run number, then writing the run under it).

The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on a
small hidden file in the folder, so it is released when its holder exits, even by ``kill -9``:
a crash never leaves the folder locked.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "folder_lock"]

LOCK_NAME = ".edgeenergy.lock"
"""The lock file's name inside the locked folder (it stays; it is empty)."""


@contextlib.contextmanager
def folder_lock(folder: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (created if missing) inside the ``with`` block.

    Waits at most ``timeout_s`` for another holder, then raises :class:`TimeoutError` naming
    the lock file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process has held the lock {path} for over "
                                   f"{timeout_s:g} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
