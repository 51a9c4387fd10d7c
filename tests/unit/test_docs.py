"""The documentation's generated tables are what the code computes today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# The full matrix behind the tables (120 plans): heavy, so CI runs it and a plain pytest not.
@pytest.mark.heavy
def test_the_energy_tables_in_the_docs_are_up_to_date() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "energy_tables.py"), "--check"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
