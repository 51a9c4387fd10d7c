"""Concurrent ``--edge-autosave`` runs never share a run number (issue 9, item 4)."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import pytest

from pytest_edgeenergy.records import runs
from pytest_edgeenergy.records.baseline import BaselineError

T0 = datetime.datetime(2026, 12, 2, 1, 0, 59, tzinfo=datetime.UTC)


def test_two_runs_saved_on_either_side_of_a_second_get_two_numbers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = runs.list_runs

    def slow_listing(folder: Path) -> list[Path]:
        found = listed(folder)
        time.sleep(0.3)  # both runs read the folder before either writes
        return found

    monkeypatch.setattr(runs, "list_runs", slow_listing)
    saved: list[Path] = []
    threads = [threading.Thread(target=lambda when=when: saved.append(
        runs.save_run(tmp_path, {}, [], runs.GitInfo("abc"), when)))
        for when in (T0, T0 + datetime.timedelta(seconds=1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    numbers = sorted(int(p.name[:4]) for p in saved)
    assert numbers == [1, 2]
    assert sorted(p.name for p in listed(tmp_path)) == sorted(p.name for p in saved)


def test_a_run_number_saved_twice_by_an_older_version_is_refused_by_name(
        tmp_path: Path) -> None:
    first = runs.save_run(tmp_path, {}, [], runs.GitInfo("abc"), T0)
    twin = tmp_path / first.name.replace("T010059Z", "T010100Z")
    twin.write_text(first.read_text())
    with pytest.raises(BaselineError, match=r"2 saved runs in .* have number 1: "):
        runs.resolve_run("1", tmp_path)
