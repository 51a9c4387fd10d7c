"""pytest-xdist support: workers hand their cases to the controller, which alone reports.

Each worker puts its records, and which edge tests it selected (every worker collects the
same), as JSON text in ``config.workeroutput`` when its session finishes; the controller reads
them in ``pytest_testnodedown``. The controller alone compares the session with the baseline
and writes files (the baseline, reports, saved runs), so no worker's entries are lost. The
controller's hooks live in :class:`EdgeXdistController`, registered only when pytest-xdist is
active (as pytest-randomly does), so the plugin never imports xdist itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .results import RESULTS_KEY, CaseResult
from .state import STATE_KEY

__all__ = ["SELECTION_KEY", "WORKEROUTPUT_KEY", "EdgeXdistController", "is_worker",
           "send_to_controller"]

WORKEROUTPUT_KEY = "pytest_edgeenergy_cases"
"""The key of a worker's records in ``workeroutput``."""

SELECTION_KEY = "pytest_edgeenergy_selection"
"""The key of a worker's :class:`.tracking.Selection` in ``workeroutput``."""


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")


def send_to_controller(config: pytest.Config) -> None:
    """On a worker: put this worker's records where the controller will read them."""
    output: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
    records = config.stash[RESULTS_KEY].to_json_list()
    output[WORKEROUTPUT_KEY] = json.dumps(records, sort_keys=True, allow_nan=False)
    output[SELECTION_KEY] = config.stash[STATE_KEY].selection.to_json()


class EdgeXdistController:
    """The controller's side: collect every worker's records as each worker finishes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Merge the records of a worker that finished (a crashed worker sends none)."""
        output = getattr(node, "workeroutput", {})
        text = output.get(WORKEROUTPUT_KEY)
        if text:
            cases = [CaseResult.from_dict(d) for d in json.loads(text)]
            self.config.stash[RESULTS_KEY].extend(cases)
        selection = output.get(SELECTION_KEY)
        if selection:
            self.config.stash[STATE_KEY].selection.merge_json(selection)
