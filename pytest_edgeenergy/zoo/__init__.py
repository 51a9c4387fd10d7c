"""The model zoo: published CNN architectures with deterministic random weights.

``list_models()`` names them, ``build_model(name, seed)`` builds one in eval mode,
``model_input_shape(name)`` gives its batch-1 input shape, and ``register_model`` lets plugins
and conftest files add their own. See ``registry`` for the weight initialisation scheme.
"""

from __future__ import annotations

from pytest_edgeenergy.zoo.registry import (
    ModelSpec,
    build_model,
    init_weights,
    list_models,
    model_input_shape,
    register_model,
)

__all__ = [
    "ModelSpec",
    "build_model",
    "init_weights",
    "list_models",
    "model_input_shape",
    "register_model",
]
