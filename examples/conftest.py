"""Registers the example strategy through the plugin's hook, as a user's conftest.py would."""

from __future__ import annotations

from typing import Any

import pytest
from megatron import MegatronStrategy


def pytest_edgeenergy_add_strategies(config: pytest.Config) -> list[Any]:
    """Add ``megatron`` to the strategies every edge test in this folder is run with."""
    return [MegatronStrategy]
