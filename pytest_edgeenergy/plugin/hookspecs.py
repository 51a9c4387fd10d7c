"""Hook specifications: how plugins and ``conftest.py`` files add strategies, models, devices.

Each hook is called with the pytest config and returns what it adds, or ``None``. Results of
every implementation are merged; a name added twice with different objects is a usage error
naming both origins. The built-in strategies and models (and installed packages' entry points)
are the ``trylast`` implementation of these hooks (``registry.DefaultSources``). Implement them
in a ``conftest.py`` or a plugin module, for example::

    def pytest_edgeenergy_add_strategies(config):
        return [MegatronStrategy]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest


def pytest_edgeenergy_add_strategies(
    config: pytest.Config,
) -> Mapping[str, Any] | Iterable[Any] | None:
    """Return partitioning strategies to add to the comparison.

    Either a mapping of name to factory (a callable that takes the strategy's parameters as
    keyword arguments and returns a strategy), or an iterable of strategy classes (whose
    class attribute ``name`` is the name) and strategy objects (used as they are). A strategy
    has a ``name``, a ``params`` dict and a ``plan(graph, cluster)`` method; subclassing
    :class:`pytest_edgeenergy.strategies.BuilderStrategy` is the short way.
    """


def pytest_edgeenergy_add_models(
    config: pytest.Config,
) -> Mapping[str, Any] | Iterable[Any] | None:
    """Return models to add to the zoo the plugin parametrises over.

    Either a mapping of name to ``(builder, input_shape)``, or an iterable of
    :class:`pytest_edgeenergy.zoo.ModelSpec`. ``builder`` takes no argument and returns a
    fresh ``nn.Module`` drawing its random weights from torch's global generator (the plugin
    seeds it, so weights are the same in every run); ``input_shape`` is ``(N, C, H, W)``.
    """


def pytest_edgeenergy_add_devices(config: pytest.Config) -> Iterable[str | Path] | None:
    """Return folders of device profiles (``<name>.toml``) to search for device names.

    They are searched after ``--edge-device-dir`` and before the profiles shipped with the
    plugin, so a profile here can replace a shipped one of the same name.
    """
