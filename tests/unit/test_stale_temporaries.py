"""A write killed half-way leaves a temporary file the next write removes (issue 9, item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_edgeenergy import atomic
from pytest_edgeenergy.atomic import stale_temporaries, write_atomic

# Writes the target through write_atomic but stops after the temporary file is written and
# before the rename, so it can be killed there.
SLOW_WRITER = """
import sys
import time
from pathlib import Path
from pytest_edgeenergy import atomic

original = atomic.os.fsync

def fsync_then_wait(fd):
    original(fd)
    print("writing", flush=True)
    time.sleep(60)

atomic.os.fsync = fsync_then_wait
atomic.write_atomic(Path(sys.argv[1]), "new\\n")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="kills with SIGKILL")
def test_a_write_killed_half_way_leaves_a_file_the_next_write_removes(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old\n")
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(30)
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and f"-{writer.pid}." in leftovers[0].name
    assert target.read_text() == "old\n"
    assert stale_temporaries(target) == leftovers
    write_atomic(target, "newer\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]
    assert target.read_text() == "newer\n"


def test_a_live_writers_temporary_file_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    ours = tmp_path / f".report.json.{_host()}-{os.getpid()}.abcd1234.tmp"
    ours.write_text("in progress")
    write_atomic(target, "x")
    assert ours.exists()


def test_an_old_temporary_file_of_unknown_owner_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    legacy = tmp_path / ".report.json.k2j3h4.tmp"  # named by an older version
    legacy.write_text("half")
    fresh = tmp_path / ".report.json.zz9911.tmp"
    fresh.write_text("half")
    hours_ago = time.time() - 7200
    os.utime(legacy, (hours_ago, hours_ago))
    write_atomic(target, "x")
    assert not legacy.exists() and fresh.exists()


def _host() -> str:
    return atomic._HOST
