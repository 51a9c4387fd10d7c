"""Files written atomically: readers see the old file or the new one, never a part.

:func:`write_atomic` is the package's one writer of files (profiles, reports, baselines,
saved runs, CI files, the docs' tables).
"""

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


def _publish(tmp: str, path: Path, exclusive: bool) -> None:
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails, rather than overwrites, when the name is taken
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists") from None
        os.replace(tmp, path)


def write_atomic(path: Path, text: str | bytes, *, exclusive: bool = False) -> None:
    """Write ``text`` (or bytes, e.g. a PNG) to ``path`` through a temporary file and a rename.

    An interrupted write leaves the old file (or none), never a truncated one. The file keeps
    the permissions of the one it replaces (a new one gets the usual ones). With
    ``exclusive``, an existing ``path`` is never replaced: :class:`FileExistsError` is raised
    (for numbered files that concurrent runs may both want).
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
        _publish(tmp, path, exclusive)
    finally:
        Path(tmp).unlink(missing_ok=True)
