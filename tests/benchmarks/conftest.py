"""Every test here is a benchmark, and so heavy: left out of a plain ``pytest`` run, run with
``pytest --heavy`` or ``pytest -m heavy`` (see the root conftest.py)."""

from __future__ import annotations

import pytest


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark each benchmark ``heavy`` as it is collected (before any ``-m`` selection)."""
    item.add_marker(pytest.mark.heavy)
