"""``--edge-backend=gloo`` from pytest: the option and its ini twin, a session's worker pool
started once per cluster size and reused, the measured times in the report, saved traces,
``edge_run(backend=...)``; and (heavy) faults in the pool: a worker killed between runs or at
an unplanned moment, a hanging one, a raising one, each followed by a passing case, with no
worker process left after the session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from edge_project import BROKEN

from pytest_edgeenergy.plugin.testing import plugin_args, run_subprocess
from pytest_edgeenergy.plugin.testing import run as run_inprocess

pytest_plugins = ["pytester"]

CASE = """
def test_case(edge_run):
    result = edge_run()
    assert result.trace.backend == "gloo"
    assert result.case.timing is not None
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_subprocess(pytester, "--edge-models=tinycnn", *args, timeout=300)


def test_a_session_starts_its_gloo_workers_once_and_reports_measured_times(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(CASE)
    pytester.makeini("[pytest]\nedge_backend = gloo\n")  # the ini twin
    result = run(pytester, "--edge-devices=2", "--edge-strategies=layer,output-channel",
                 f"--edge-trace-dir={tmp_path}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*edge gloo workers*",
                                 "2 devices (spawn) started in * s in process *, once for every "
                                 "case of that size",
                                 "*measured (gloo timeline) against simulated times*"])
    assert result.stdout.str().count("started in") == 1
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["tinycnn_layer_2xrpi4_1x3x32x32_board.trace.json",
                     "tinycnn_output-channel_2xrpi4_1x3x32x32_board.trace.json"]
    trace = json.loads((tmp_path / saved[0]).read_text())
    assert trace["format"] == "pytest-edgeenergy-trace/1" and trace["timeline"]


@pytest.mark.parametrize(("args", "message"), [
    (["--edge-backend=mpi"], "--edge-backend='mpi' (from the command line) is not one of the "
                             "choices; valid choices: local, gloo"),
    (["--edge-gloo-init=ssh"], "--edge-gloo-init='ssh' (from the command line) is not one of "
                               "the choices; valid choices: spawn, env"),
    (["--edge-gloo-timeout=0"], "--edge-gloo-timeout='0' (from the command line) is not a "
                                "positive number of seconds"),
    (["--edge-gloo-port=70000"], "--edge-gloo-port='70000' (from the command line) is not a "
                                 "TCP port"),
])
def test_a_bad_backend_option_is_a_usage_error(pytester: pytest.Pytester, args: list[str],
                                               message: str) -> None:
    pytester.makepyfile(CASE)
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_edge_run_may_choose_its_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
def test_local(edge_run):
    assert edge_run(backend="local").trace.backend == "local"
""")
    # In-process (no worker is started, so nothing needs a subprocess)
    result = run_inprocess(pytester, "--edge-models=tinycnn", "--edge-backend=gloo",
                           "--edge-devices=2", "--edge-strategies=layer")
    result.assert_outcomes(passed=1)
    assert "started in" not in result.stdout.str()  # no case needed the workers


FAULTS = """
import os, signal, threading, time
from pathlib import Path

import pytest

from pytest_edgeenergy import PartitionError
from pytest_edgeenergy.plugin.gloo import GLOO_KEY

PIDS = Path(os.environ["EDGE_PIDS_FILE"])


def workers(request):
    pids = request.config.stash[GLOO_KEY].pool.pids(2)
    with PIDS.open("a") as f:
        f.write("".join(f"{p}\\n" for p in pids))
    return pids


""" + BROKEN + """

def test_1_healthy(edge_run, request):
    edge_run()
    workers(request)


def test_2_a_worker_killed_between_cases(edge_run, request):
    os.kill(workers(request)[1], signal.SIGKILL)
    with pytest.raises(PartitionError, match=r"device 1 failed (?s:.*)SIGKILL"):
        edge_run()


def test_3_the_next_case_gets_new_workers(edge_run, request):
    edge_run()
    workers(request)


def test_4_a_worker_killed_at_an_unplanned_moment(edge_run, request):
    pid = workers(request)[1]
    threading.Timer(0.05 + (time.time_ns() % 1000) / 10000, os.kill,
                    (pid, signal.SIGKILL)).start()
    with pytest.raises(PartitionError, match=r"device 1 failed"):
        for _ in range(1000):
            edge_run()


def test_5_the_next_case_passes(edge_run, request):
    edge_run()


def test_6_a_hanging_worker_times_out(edge_run, request):
    os.kill(workers(request)[1], signal.SIGSTOP)
    t0 = time.monotonic()
    with pytest.raises(PartitionError, match=r"gave no result within 5 s"):
        edge_run()
    assert time.monotonic() - t0 < 15


def test_7_the_next_case_passes(edge_run, request):
    edge_run()
    workers(request)


@pytest.mark.parametrize("edge_strategy", [Broken()], indirect=True)
def test_8_a_raising_worker_is_named_with_its_step(edge_run, request):
    with pytest.raises(PartitionError, match=r"device 1 failed at step \\d+ \\(task "
                                             r"'no_such_layer'"):
        edge_run()
"""


@pytest.mark.heavy
def test_pool_faults_end_the_case_and_the_next_case_gets_a_healthy_pool(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(FAULTS)
    pids_file = pytester.path / "pids.txt"
    monkeypatch.setenv("EDGE_PIDS_FILE", str(pids_file))
    result = run(pytester, "--edge-backend=gloo", "--edge-devices=2",
                 "--edge-strategies=output-channel", "--edge-gloo-timeout=5")
    result.assert_outcomes(passed=8)
    pids = {int(p) for p in pids_file.read_text().split()}
    assert len(pids) >= 4  # the first workers, and the ones that replaced them
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert alive == [], f"worker processes outlived the session: {alive}"


@pytest.mark.heavy
def test_under_xdist_each_worker_owns_its_pool_and_the_controller_reports_them(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CASE)
    result = run(pytester, "-n", "2", "--edge-backend=gloo", "--edge-devices=2",
                 "--edge-strategies=layer,spatial,output-channel,input-channel")
    result.assert_outcomes(passed=4)
    starts = [line for line in result.outlines if "started in" in line]
    pids = {line.split("in process ")[1].split(",")[0] for line in starts}
    assert len(starts) == len(pids) == 2, starts  # one pool per xdist worker, each once
