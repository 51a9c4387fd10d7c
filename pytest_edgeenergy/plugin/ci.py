"""JUnit XML properties: each ``edge_run()`` adds the case's figures to its test's
``user_properties`` (what ``record_property`` does), so they land in ``--junitxml`` as
``<property>`` elements. The CI files (job summary, benchmark JSON) need no pytest: they are in
:mod:`pytest_edgeenergy.records.ci`.
"""

from __future__ import annotations

import pytest

from ..records.results import CaseResult

__all__ = ["record_case_properties"]


def record_case_properties(node: pytest.Item, case: CaseResult, baseline_status: str) -> None:
    """Add the case's figures to the test's properties (JUnit XML ``<property>`` elements).

    This is what the ``record_property`` fixture does, without its warning under the default
    ``junit_family=xunit2`` (whose schema has no properties on a test case: CI tools read
    them anyway; use ``-o junit_family=xunit1`` for a strict schema validator).
    """
    props: list[tuple[str, object]] = [("edge_case", case.key), ("edge_status", case.status)]
    if case.energy is not None:
        energy = case.energy
        props += [("edge_max_device_j", energy.max_device_j), ("edge_total_j", energy.total_j),
                  ("edge_makespan_s", energy.makespan_s), ("edge_comm_bytes", energy.comm_bytes)]
        props += [(f"edge_device{d.index}_j", d.total_j) for d in energy.devices]
    props.append(("edge_baseline", baseline_status))
    node.user_properties.extend((name, repr(v) if isinstance(v, float) else v)
                                for name, v in props)
