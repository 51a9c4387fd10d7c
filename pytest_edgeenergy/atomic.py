"""Files written atomically: readers see the old file or the new one, never a part.

:func:`write_atomic` is the package's one writer of files (profiles, reports, baselines,
saved runs, CI files, the docs' tables).
"""

from __future__ import annotations

import glob
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["file_mode", "stale_temporaries", "write_atomic"]

#: A temporary file older than this whose owner cannot be checked is taken as abandoned.
_ABANDONED_S = 3600.0
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


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
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)
    mode = file_mode(path)
    # Named after the target, this host and this process, so a write killed half-way leaves a
    # file that the next write of the same target recognises as abandoned and removes.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}-{os.getpid()}.",
                               suffix=".tmp")
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


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of :func:`write_atomic` for ``path`` left by writes that were killed:
    those of a process of this host that no longer runs, and those older than an hour whose
    owner cannot be checked (another host, or written by an older version)."""
    mine = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}-(\d+)\.[^.]+\.tmp")
    found: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return []
    now = time.time()
    for candidate in candidates:
        match = mine.fullmatch(candidate.name)
        if match is not None:
            if not _alive(int(match.group(1))):
                found.append(candidate)
            continue
        try:
            age_s = now - candidate.lstat().st_mtime
        except OSError:
            continue
        if age_s > _ABANDONED_S:
            found.append(candidate)
    return sorted(found)

