"""Files written atomically: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["file_mode", "write_atomic"]


def file_mode(path: Path) -> int:
    """The permissions a file written at ``path`` should get: those of the file it replaces,
    or what ``open()`` would give a new file (0o666 less the umask).

    A temporary file from :func:`tempfile.mkstemp` is private (0o600); renamed into place as
    it is, a committed baseline or a report would become unreadable to others.
    """
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes, e.g. a PNG) to ``path`` through a temporary file and a rename.

    An interrupted write leaves the old file (or none), never a truncated one. The file keeps
    the permissions of the one it replaces (a new one gets the usual ones).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, mode)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
