"""Paths a user names are read only when they are regular files of bounded size: a named pipe
or a device never blocks or fills the memory (issue 9, item 9)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_edgeenergy import ProfileError, load_device
from pytest_edgeenergy.records.baseline import BaselineError, parse_json_object
from pytest_edgeenergy.userfiles import MAX_RECORD_BYTES, read_regular_file

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def _within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a daemon thread; fail the test if it is still blocked after
    ``seconds`` (a blocked read would otherwise hang the test run)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still blocked after {seconds} s")
    return raised[0] if raised else None


def test_a_device_profile_that_is_a_named_pipe_is_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "board.toml"
    os.mkfifo(pipe)
    error = _within(10, lambda: load_device(pipe))
    assert isinstance(error, ProfileError)
    assert str(error) == (f"cannot read device profile {pipe}: it is a named pipe, not a "
                          f"regular file")


def test_a_baseline_that_is_a_named_pipe_is_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "baseline.json"
    os.mkfifo(pipe)
    error = _within(10, lambda: parse_json_object(pipe, "baseline"))
    assert isinstance(error, BaselineError)
    assert "it is a named pipe, not a regular file" in str(error)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_baseline_that_is_dev_zero_is_refused_without_reading_it() -> None:
    error = _within(10, lambda: parse_json_object(Path("/dev/zero"), "baseline"))
    assert isinstance(error, BaselineError)
    assert "it is a character device, not a regular file" in str(error)


def test_a_baseline_larger_than_the_bound_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "baseline.json"
    with open(big, "wb") as handle:  # sparse: takes no room on disk
        handle.truncate(MAX_RECORD_BYTES + 1)
    with pytest.raises(BaselineError, match=r"larger than 268,435,456 bytes"):
        parse_json_object(big, "baseline")


def test_a_file_that_grows_past_the_bound_while_read_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, 100) == b"x" * 100
    with pytest.raises(OSError, match="larger than 99 bytes"):
        read_regular_file(path, 99)


def test_a_folder_is_named_as_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "x.toml"
    folder.mkdir()
    with pytest.raises(ProfileError, match=r"cannot read device profile .*: it is a folder"):
        load_device(folder)
