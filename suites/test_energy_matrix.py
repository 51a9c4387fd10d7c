"""The energy matrix: every model x strategy x cluster, partitioned, checked and estimated.

This is what fills the comparison table at the end of ``pytest --edge-devices=4``.
"""

from __future__ import annotations

import math

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.plugin import EdgeRunner


def test_each_case_is_exact_and_costs_energy_on_every_device(edge_run: EdgeRunner,
                                                             edge_cluster: Cluster) -> None:
    """The partitioned output equals the model's; every device's joules add up."""
    result = edge_run()
    energy = result.energy
    assert len(energy.devices) == len(edge_cluster)
    for device in energy.devices:
        assert math.isclose(device.total_j, device.compute_j + device.comm_j + device.static_j,
                            rel_tol=1e-12)
        assert device.static_j > 0  # every device is powered for the whole inference
    assert energy.makespan_s > 0
    assert math.isclose(energy.total_j, sum(d.total_j for d in energy.devices), rel_tol=1e-12)
    assert result.case.ok
