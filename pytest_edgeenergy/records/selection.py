"""Which edge tests a run selected, and so which baseline entries it could have produced.

**Unused entries.** As syrupy does for snapshots, an entry that no test produced is reported
as unused only when this run could have produced it: one of the test functions that recorded
it ran in full (none of its parametrisations deselected by ``-k``, ``-m``, ``--deselect`` or
``--lf``, skipped, or left unrun by ``-x``; and no parametrised node id was named on the
command line), for the entry's model, cluster and energy model; and, when ``--edge-strategies``
names strategies, the entry's strategy is one of them. An entry is also unused when every test
that recorded it is gone: its file was collected whole and no longer holds it. Anything else
(another cluster, another model, a selection, a file not collected) leaves the entry alone: the
run says nothing about it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence

from .baseline import Baseline, function_id
from .results import CaseResult

__all__ = ["Selection", "unused_keys"]


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclasses.dataclass
class Selection:
    """Which edge tests this run selected, by test function: what could produce which entry.

    ``selected`` maps a test function (node id without parameters) to the node ids of its
    selected parametrisations; ``deselected`` holds the functions some of whose
    parametrisations were deselected; ``files`` the test files any item was collected from.
    ``narrowed`` is set when the command line named a parametrised node
    (``test_x.py::test_f[...]``), which selects without deselecting; ``nodes_named`` when it
    named any node inside a file (``test_x.py::test_f``), so a file's other functions may be
    missing from the run without being gone.
    """

    selected: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    deselected: set[str] = dataclasses.field(default_factory=set)
    files: set[str] = dataclasses.field(default_factory=set)
    narrowed: bool = False
    nodes_named: bool = False

    def note_args(self, args: Sequence[str]) -> None:
        """Record whether the command line named nodes inside files."""
        self.nodes_named = any("::" in a for a in args)
        self.narrowed = any("::" in a and a.rstrip().endswith("]") for a in args)

    def add_selected(self, items: Iterable[tuple[str, bool]]) -> None:
        """Record the items that will run: (node id, whether it is an edge test) pairs."""
        for nodeid, edge in items:
            self.files.add(_file_of(nodeid))
            if edge:
                self.selected.setdefault(function_id(nodeid), set()).add(nodeid)

    def add_deselected(self, items: Iterable[tuple[str, bool]]) -> None:
        """Record items that ``-k``, ``-m``, ``--deselect``, ``--lf`` and the like dropped."""
        for nodeid, edge in items:
            self.files.add(_file_of(nodeid))
            if edge:
                self.deselected.add(function_id(nodeid))

    def functions(self) -> set[str]:
        """Every edge test function this run collected, selected or not."""
        return set(self.selected) | self.deselected

    def complete(self, recorded: set[str]) -> set[str]:
        """The functions that ran in full: every parametrisation selected and recorded."""
        if self.narrowed:
            return set()
        return {f for f, nodeids in self.selected.items()
                if f not in self.deselected and nodeids <= recorded}

    def gone(self, function: str) -> bool:
        """Whether a test function no longer exists: its file was collected whole (no node
        named on the command line) and holds no edge test of that name."""
        return (not self.nodes_named and _file_of(function) in self.files
                and function not in self.functions())

    def to_json(self) -> str:
        """JSON text, for a pytest-xdist worker to hand to the controller."""
        return json.dumps({"selected": {f: sorted(n) for f, n in self.selected.items()},
                           "deselected": sorted(self.deselected), "files": sorted(self.files),
                           "narrowed": self.narrowed, "nodes_named": self.nodes_named},
                          sort_keys=True)

    def merge_json(self, text: str) -> None:
        """Merge a worker's selection (every worker collects the same items)."""
        data = json.loads(text)
        for function, nodeids in data["selected"].items():
            self.selected.setdefault(function, set()).update(nodeids)
        self.deselected.update(data["deselected"])
        self.files.update(data["files"])
        self.narrowed = self.narrowed or bool(data["narrowed"])
        self.nodes_named = self.nodes_named or bool(data["nodes_named"])



def unused_keys(baseline: Baseline, produced: set[str], records: Sequence[CaseResult],
                selection: Selection, strategies: Sequence[str] | None) -> list[str]:
    """The entries no test produced although this run could have (see the module's doc)."""
    recorded = {c.nodeid for c in records}
    complete = selection.complete(recorded)
    scope: dict[str, set[tuple[str, str, str]]] = {}
    for case in records:
        function = function_id(case.nodeid)
        if function in complete:
            scope.setdefault(function, set()).add((case.model, case.cluster, case.energy_model))
    named = None if strategies is None or "all" in strategies else set(strategies)
    out = []
    for key, entry in sorted(baseline.entries.items()):
        if key in produced:
            continue
        if entry.tests and all(selection.gone(test) for test in entry.tests):
            out.append(key)  # every test that produced it is gone from its file
            continue
        if named is not None and entry.strategy not in named:
            continue
        where = (entry.model, entry.cluster, entry.energy_model)
        if any(where in scope.get(test, ()) for test in entry.tests):
            out.append(key)
    return out
