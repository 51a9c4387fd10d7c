"""Reading a file a user named: regular files only, and only up to a size.

A path a user gives (a device profile, a baseline, a saved run) may name a named pipe (reading
it blocks until someone writes), a device such as ``/dev/zero`` (reading it never ends and
fills the memory), a folder, or a huge file. :func:`read_regular_file` opens without blocking,
checks what was opened (not what the path named a moment before), and reads at most
``max_bytes``. Its refusals are ``OSError``\\ s with a readable ``strerror``, so a caller's
existing ``except OSError`` names the file and the reason in its own words.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["MAX_PROFILE_BYTES", "MAX_RECORD_BYTES", "read_regular_file"]

MAX_PROFILE_BYTES = 1 * 2**20
"""A device profile is a few dozen lines; a mebibyte is far beyond any real one."""

MAX_RECORD_BYTES = 256 * 2**20
"""A baseline or a saved run: about 2 kB per case, so room for over 100,000 cases."""

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes`` bytes.

    Raises ``FileNotFoundError``/``PermissionError`` as ``open`` does, ``IsADirectoryError``
    for a folder, and ``OSError`` for anything else that is not a regular file or is too
    large, each with a ``strerror`` that says so.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"it is {_kind(info.st_mode)}, not a regular file",
                          str(path))
        if info.st_size > max_bytes:
            raise _too_large(path, max_bytes)
        chunks: list[bytes] = []  # read with a bound too: the file may grow meanwhile
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise _too_large(path, max_bytes)
    return data


def _too_large(path: Path, max_bytes: int) -> OSError:
    return OSError(errno.EFBIG, f"it is larger than {max_bytes:,} bytes, far beyond what such "
                                f"a file holds", str(path))
