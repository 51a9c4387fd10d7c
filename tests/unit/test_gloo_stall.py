"""A gloo run that times out names the device that holds it up and its step; a script without
the main guard is told so (issue 9, item 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pytest_edgeenergy import PartitionError, build_model, partition
from pytest_edgeenergy.backends import GlooWorkers
from pytest_edgeenergy.backends.stall import (
    FINISHED,
    IDLE,
    describe_stall,
    script_without_main_guard,
)
from pytest_edgeenergy.plan import Plan, Step, Task, Transfer

pytest_plugins = ["gloo_pools"]  # the session's gloo_workers

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")

SHAPE = (1, 3, 32, 32)


def _describe(step: Step) -> str:
    return f"at step {step.step}"


def _plan() -> Plan:
    return partition(build_model("tinycnn"), "layer", 3, SHAPE).plan


def _first_transfer(plan: Plan, src: int, dst: int) -> int:
    return next(s.step for s in plan.steps
                if isinstance(s, Transfer) and (s.src, s.dst) == (src, dst))


def test_a_stopped_worker_is_named_before_the_ones_that_wait_for_it() -> None:
    plan = _plan()
    send = _first_transfer(plan, 0, 1)
    at = {0: send, 1: IDLE, 2: IDLE}
    text = describe_stall(plan, [0, 1, 2], at, {0: "S", 1: "T", 2: "S"}, {0: 10, 1: 11, 2: 12},
                          _describe)
    assert text.startswith("device 1 is stuck before its first step: its process (pid 11) is "
                           "stopped (SIGSTOP, or a debugger)")
    assert f"device 0 at step {send}, waiting for device 1" in text


def test_without_a_stopped_process_the_waits_are_followed_to_the_slow_device() -> None:
    plan = _plan()
    compute = next(s.step for s in plan.steps if isinstance(s, Task) and s.device == 1)
    later = _first_transfer(plan, 1, 2)
    at = {0: FINISHED, 1: compute, 2: later}
    text = describe_stall(plan, [0, 1, 2], at, {}, {}, _describe)
    assert text.startswith(f"device 1 is stuck at step {compute}")
    assert f"device 2 at step {later}, waiting for device 1" in text
    assert "device 0 after its last step" in text


def test_a_worker_stopped_by_sigstop_is_named_with_its_step_on_timeout(
        gloo_workers: Callable[[int], GlooWorkers]) -> None:
    model = build_model("tinycnn")
    x = torch.randn(SHAPE)
    pm = partition(model, "layer", 3, SHAPE)
    pool = gloo_workers(3)  # the session's: the failure stops them, a later user gets new ones
    pool.run(pm.plan, pm.graph, x)
    os.kill(pool.pids[2], signal.SIGSTOP)
    with pytest.raises(PartitionError) as caught:
        pool.run(pm.plan, pm.graph, x, timeout_s=2.0)
    assert not pool.alive
    message = str(caught.value)
    assert "device 2 is stuck before its first step: its process (pid " in message
    assert "is stopped (SIGSTOP, or a debugger)" in message
    assert "waiting for device 2" in message


GUARDLESS = """
    import torch
    from pytest_edgeenergy import build_model, partition

    pm = partition(build_model("tinycnn"), "layer", 2, (1, 3, 32, 32), backend="gloo")
    pm(torch.randn(1, 3, 32, 32))
    print("ran")
"""


@pytest.mark.heavy  # a fresh interpreter and two workers importing torch: about 30-50 s here
def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path: Path) -> None:
    script = tmp_path / "run_me.py"
    script.write_text(textwrap.dedent(GUARDLESS), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, check=False, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert (f"the script {script} has no 'if __name__ == \"__main__\":' guard"
            in done.stderr), done.stderr[-3000:]


@pytest.mark.parametrize(("source", "flagged"), [
    ("x = 1\n", True),
    ("if __name__ == '__main__':\n    x = 1\n", False),
    ("if '__main__' == __name__:\n    x = 1\n", False),
    ("def main():\n    pass\nif __name__ == \"__main__\":\n    main()\n", False),
    ("if __name__ != '__main__':\n    x = 1\n", True),
])
def test_the_main_guard_is_recognised_in_either_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, flagged: bool) -> None:
    script = tmp_path / "s.py"
    script.write_text(source, encoding="utf-8")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert (script_without_main_guard() == str(script)) is flagged
