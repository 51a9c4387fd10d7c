"""What a writer did with one file, as data: the session turns it into one line at its end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..atomic import write_atomic

__all__ = ["Written", "reason", "write_file"]

# kind: (line when it worked, line when it failed); {path} and {reason} are filled in.
_LINES: dict[str, tuple[str, str]] = {
    "report": ("edge energy report written to {path}",
               "could not write the edge energy report {path}: {reason}"),
    "benchmark json": ("edge benchmark JSON written to {path}",
                       "could not write the edge benchmark JSON {path}: {reason}"),
    "step summary": ("",
                     "could not append the edge energy report to $GITHUB_STEP_SUMMARY "
                     "({path}): {reason}"),
    "saved run": ("edge energy run saved to {path}", "could not save the run in {path}: {reason}"),
    "no saved run": ("no edge case ran: no run saved", ""),
    "picture": ("edge energy picture written to {path}",
                "could not write the edge energy picture {path}: {reason}"),
}


@dataclasses.dataclass(frozen=True)
class Written:
    """One file a writer wrote (``error`` is ``None``) or failed to write (the OS's reason).

    ``kind`` is one of the kinds this module knows (``report``, ``benchmark json``,
    ``step summary``, ``saved run``, ``no saved run``, ``picture``); ``shown`` is the path
    as the line shows it.
    """

    kind: str
    shown: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the file was written."""
        return self.error is None

    def line(self) -> str:
        """The terminal line for this file (empty when success needs no word)."""
        done, failed = _LINES[self.kind]
        return (done if self.ok else failed).format(path=self.shown, reason=self.error)


def reason(exc: OSError) -> str:
    """The OS's reason for a failed write, without the traceback."""
    return str(exc.strerror or exc)


def write_file(kind: str, path: Path, text: str, shown: str | None = None) -> Written:
    """Write ``text`` to ``path`` atomically; say what happened as a :class:`Written`."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        return Written(kind, shown or str(path), reason(exc))
    return Written(kind, shown or str(path))
