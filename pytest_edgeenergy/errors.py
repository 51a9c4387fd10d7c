"""Exceptions raised by pytest-edgeenergy, one per kind of bad input."""

from __future__ import annotations


class EdgeEnergyError(Exception):
    """Base class of every error this package raises on bad input."""


class PartitionError(EdgeEnergyError):
    """A model, input shape, strategy or device count that cannot be partitioned.

    The message names the layer (or argument), its type or value, and the strategy.
    """


class ProfileError(EdgeEnergyError):
    """A device profile that is missing, malformed or out of range.

    The message names the file, the field and what was expected.
    """
