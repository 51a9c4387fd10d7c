"""The run's conditions, for strategies that price their own plans.

A strategy that chooses between plans by their energy (``search``) must price them as the run
will: with the run's energy model and scenario. Such a strategy has a ``for_run(energy_model,
scenario)`` method returning a copy set up for them; :func:`for_run` applies it, and leaves
every other strategy as it is.
"""

from __future__ import annotations

from .protocol import Strategy

__all__ = ["for_run"]


def for_run(strategy: Strategy, energy_model: str, scenario: object | None = None) -> Strategy:
    """``strategy`` as it should plan in a run with ``energy_model`` and ``scenario``."""
    hook = getattr(strategy, "for_run", None)
    if not callable(hook):
        return strategy
    configured: Strategy = hook(energy_model, scenario)
    return configured
