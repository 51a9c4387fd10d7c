"""What the calibration tests share: a measurement made up for the test (no timing), and the
profile lines that calibration leaves for a person to fill in from a meter and the network."""

from __future__ import annotations

import datetime as dt

from pytest_edgeenergy import calibrate

FAKE = calibrate.Calibration(
    macs_per_s=1.234e10,
    mem_bytes_per_s=5.0e9,
    memory_bytes=8 * 2**30,
    torch_version="9.9.9",
    threads=2,
    when=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    command="python -m pytest_edgeenergy calibrate --out x.toml",
)

FILLED_IN = """
network = "Gigabit Ethernet"
idle_w = 2.0
active_w = 6.0
net_bytes_per_s = 1.0e8
net_latency_s = 2.0e-4
tx_j_per_byte = 5.0e-9
rx_j_per_byte = 5.0e-9
"""
