"""The energy models known by name: ``board`` (the default) and ``ops``, plus any registered."""

from __future__ import annotations

import difflib

from .board import BoardModel
from .errors import EnergyError
from .ops import OpsModel
from .protocol import EnergyModel

__all__ = [
    "DEFAULT_ENERGY_MODEL",
    "get_energy_model",
    "list_energy_models",
    "register_energy_model",
    "unregister_energy_model",
]

DEFAULT_ENERGY_MODEL = "board"
"""The model ``estimate_energy`` uses unless told otherwise."""

_REGISTRY: dict[str, EnergyModel] = {"board": BoardModel(), "ops": OpsModel()}


def list_energy_models() -> list[str]:
    """Names of the registered energy models, the built-in ones first."""
    return list(_REGISTRY)


def register_energy_model(model: EnergyModel, *, replace: bool = False) -> None:
    """Make ``get_energy_model(model.name)`` return ``model``.

    Raises :class:`ValueError` if the object is not an energy model or its name is taken by
    another model (pass ``replace=True`` to override).
    """
    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"an energy model needs a non-empty string 'name', got {name!r}")
    if not isinstance(getattr(model, "version", None), str) or not callable(
            getattr(model, "device_energy", None)):
        raise ValueError(f"energy model {name!r} needs a string 'version' and a "
                         f"'device_energy(profile, usage)' method")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not model:
        raise ValueError(f"energy model {name!r} is already registered")
    _REGISTRY[name] = model


def unregister_energy_model(name: str) -> None:
    """Forget a registered energy model (for tests and plugins that clean up)."""
    _REGISTRY.pop(name, None)


def get_energy_model(name: str) -> EnergyModel:
    """The registered energy model called ``name``.

    Raises :class:`EnergyError` naming the known models if there is none.
    """
    model = _REGISTRY.get(name) if isinstance(name, str) else None
    if model is None:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise EnergyError(f"unknown energy model {name!r}{hint}; known energy models: "
                          f"{', '.join(_REGISTRY)}")
    return model
