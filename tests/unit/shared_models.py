"""Zoo models built once per test session, for the tests that only read them.

Building a big zoo model is mostly drawing its random weights (VGG-16: 138 M of them, about half
a second); tests that partition, plan or count a model need it built, not built by them. A test
that changes a model, or checks building itself (``test_zoo.py``), calls ``build_model``.
"""

from __future__ import annotations

import functools

from torch import nn

from pytest_edgeenergy.weightwatch import weights_token
from pytest_edgeenergy.zoo import build_model


@functools.lru_cache(maxsize=4)  # the big models one after another, not all of them at once
def _built(name: str) -> tuple[nn.Module, object]:
    model = build_model(name)
    return model, weights_token(model)


def shared_model(name: str) -> nn.Module:
    """``build_model(name)`` (seed 0), built once and shared.

    Every use checks that the weights and layers are those it was built with, so a test that
    changed the model makes the next user fail with this message instead of reading another
    model than the one it asked for.
    """
    model, token = _built(name)
    if weights_token(model) != token:
        raise AssertionError(f"a test changed the shared model {name!r}: a test that changes "
                             "a model must build its own (build_model)")
    return model
