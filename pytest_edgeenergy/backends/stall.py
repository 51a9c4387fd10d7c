"""Why a multi-process run made no progress: which device holds the others up, at which step.

When a run of the gloo backend times out, every device without a result is either waiting for
another (a receive whose sender has not reached that step yet) or is itself the cause: its
process was stopped (``SIGSTOP``, a debugger), or it is still computing. Each worker publishes
the step it is at; :func:`describe_stall` follows the waits from device to device to the one
that waits for nobody, and says so with the process state the operating system reports.

:func:`script_without_main_guard` explains the other silent failure: a script without
``if __name__ == "__main__":`` is imported again by every worker process (the ``spawn`` start
method), so its top-level code runs again there and the worker dies while starting.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..plan import Plan, Step, Transfer
from ..userfiles import MAX_PROFILE_BYTES, read_regular_file

__all__ = ["FINISHED", "IDLE", "MAIN_GUARD_ADVICE", "describe_stall", "process_state",
           "script_without_main_guard"]

IDLE = -1
"""Published by a worker that has not started the plan's steps (or waits for a job)."""

FINISHED = -2
"""Published by a worker that walked all the plan's steps."""

_STATES = {"T": "stopped (SIGSTOP, or a debugger)", "t": "stopped by a debugger",
           "Z": "a zombie (it exited)", "D": "in an uninterruptible wait (disk or kernel)"}


def process_state(pid: int) -> str | None:
    """The process state letter Linux reports for ``pid`` (``R``, ``S``, ``T``...), or None
    where there is no ``/proc`` or the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    after_name = text.rsplit(")", 1)[-1].split()
    return after_name[0] if after_name else None


def _position(plan: Plan, published: int, describe: Callable[[Step], str]) -> str:
    if published == IDLE:
        return "before its first step"
    if published == FINISHED:
        return "after its last step (sending its result)"
    if 0 <= published < len(plan.steps):
        return describe(plan.steps[published])
    return f"at an unknown step {published}"


def _waits_for(plan: Plan, device: int, at: Mapping[int, int]) -> int | None:
    """The device ``device`` waits for: the other end of the transfer it is at, when that end
    has not reached the transfer yet."""
    step_index = at.get(device, IDLE)
    if not 0 <= step_index < len(plan.steps):
        return None
    step = plan.steps[step_index]
    if not isinstance(step, Transfer) or step.src == step.dst:
        return None
    peer = step.dst if step.src == device else step.src
    peer_at = at.get(peer, IDLE)
    return peer if peer_at == IDLE or 0 <= peer_at < step_index else None


def describe_stall(plan: Plan, pending: Sequence[int], at: Mapping[int, int],
                   states: Mapping[int, str | None], pids: Mapping[int, int],
                   describe: Callable[[Step], str]) -> str:
    """One sentence naming the device that holds the run up and the step it is at, then
    where every other device without a result was.

    ``at`` is each device's published step (or :data:`IDLE`/:data:`FINISHED`), ``states`` the
    operating system's state letter of its process, ``describe`` how a step is worded.
    """
    waiting = sorted(pending)
    stopped = [d for d in waiting if states.get(d) in ("T", "t")]
    if stopped:
        culprit = stopped[0]
    else:  # follow the waits to the device that waits for nobody
        culprit = min(waiting, key=lambda d: (at.get(d, IDLE) < 0, at.get(d, IDLE)))
        seen = {culprit}
        while (nxt := _waits_for(plan, culprit, at)) is not None and nxt not in seen:
            seen.add(nxt)
            culprit = nxt
    state = states.get(culprit)
    how = _STATES.get(state or "", "running" if state in ("R", "S") else "")
    process = f"its process (pid {pids.get(culprit, '?')}) is {how}" if how else ""
    head = (f"device {culprit} is stuck {_position(plan, at.get(culprit, IDLE), describe)}"
            + (f": {process}" if process else ""))
    others = []
    for d in waiting:
        if d == culprit:
            continue
        peer = _waits_for(plan, d, at)
        why = f", waiting for device {peer}" if peer is not None else ""
        others.append(f"device {d} {_position(plan, at.get(d, IDLE), describe)}{why}")
    return head + (f" ({'; '.join(others)})" if others else "")


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and mains)


def script_without_main_guard() -> str | None:
    """The path of the running ``__main__`` script when it is a Python file with no top-level
    ``if __name__ == "__main__":``, else None (no script, an interactive session, a guard)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    try:
        tree = ast.parse(read_regular_file(Path(path), 16 * MAX_PROFILE_BYTES))
    except (OSError, SyntaxError, ValueError):
        return None
    if any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body):
        return None
    return path


MAIN_GUARD_ADVICE = (
    "the script {path} has no 'if __name__ == \"__main__\":' guard. The gloo backend starts "
    "its worker processes with the 'spawn' method, which imports the script again in each of "
    "them, so its top-level code (the partitioning and running) runs again in every worker, "
    "which then fails while starting. Put that code under the guard; see docs/distributed.md "
    "or the README")
"""What to tell a user whose script lacks the guard (``{path}``: the script)."""
