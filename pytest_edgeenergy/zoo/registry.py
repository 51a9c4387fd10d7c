"""The model registry: names, builders with deterministic weights, and input shapes.

Every model is built by a zero-argument *builder* while the CPU random generator is seeded with
the caller's ``seed`` inside ``torch.random.fork_rng``: the same seed gives the same weights, and
the caller's global random state is left as it was. Built models are in eval mode.

Weights of the built-in models (``init_weights``)
-------------------------------------------------
No pretrained weights are downloaded; weights are random but chosen so that (1) folding
batch-norm into the preceding convolution is a real computation, and (2) activations stay
numerically sane (finite, output standard deviation between 1e-2 and 1e2 for a standard normal
input) even in ResNet-101, whose eval-mode batch-norms do not re-normalise anything.

* ``Conv2d``: Kaiming-normal weights, fan-in mode, ReLU gain: std = sqrt(2 / fan_in), which keeps
  the second moment of activations roughly constant through conv-ReLU pairs. Biases, where a
  convolution has one, uniform in [-0.05, 0.05].
* ``Linear``: normal weights with std = 1 / sqrt(in_features) (keeps the second moment), biases
  uniform in [-0.05, 0.05].
* ``BatchNorm2d`` eval statistics are deliberately non-trivial, per channel: gamma uniform in
  [0.7, 1.3], beta uniform in [-0.2, 0.2], running_mean uniform in [-0.2, 0.2] and running_var
  uniform in [0.75, 1.5]. The Kaiming scaling makes the expected variance of a convolution's
  output about 1, so a running_var around 1 is what a trained network would have recorded. The
  range is picked so that the mean gain on the variance, E[gamma^2] * E[1 / running_var] =
  1.03 * ln(2) / 0.75 = 0.95, is a little below 1: it offsets the growth that max-pools (which
  raise the second moment) cause in long plain chains such as YOLOv2's 23 convolutions.
* Residual branches: a block that adds a branch to its input (ResNet's basic/bottleneck blocks,
  MobileNetV2's stride-1 bottlenecks, TinyCNN's block) exposes ``residual_branch_norm()``, the
  batch-norm just before the add; its gamma and beta are multiplied by ``RESIDUAL_SCALE`` (0.2).
  With a branch as strong as the identity the residual stream would roughly double per block
  (2^33 over ResNet-101's 33 blocks); at 0.2 it grows by a few percent per block.

The built-in builders construct the architecture on the meta device and fill the empty CPU
tensors with ``init_weights`` (torch's default initialisation would only be overwritten), so
every parameter and buffer comes from this scheme.

Plugins and conftest files add models with ``register_model``; their builders may call
``init_weights`` to get the same scheme.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import torch
from torch import nn

from pytest_edgeenergy.checks import as_seed
from pytest_edgeenergy.errors import PartitionError
from pytest_edgeenergy.zoo.densenet import densenet121
from pytest_edgeenergy.zoo.efficientnet import efficientnet_b0
from pytest_edgeenergy.zoo.mobilenet import mobilenet_v2
from pytest_edgeenergy.zoo.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from pytest_edgeenergy.zoo.resnet import resnet18, resnet50, resnet101
from pytest_edgeenergy.zoo.shufflenet import shufflenet_v2
from pytest_edgeenergy.zoo.tiny import tinycnn
from pytest_edgeenergy.zoo.vgg import vgg16, vgg19
from pytest_edgeenergy.zoo.yolo import yolov2, yolov2_tiny
from pytest_edgeenergy.zoo.yolov8 import yolov8n

__all__ = [
    "RESIDUAL_SCALE",
    "ModelSpec",
    "ResidualBlock",
    "build_model",
    "build_seeded",
    "init_weights",
    "list_models",
    "model_input_shape",
    "register_model",
]

#: Factor applied to gamma and beta of the batch-norm that ends each residual branch.
RESIDUAL_SCALE: Final[float] = 0.2

_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@runtime_checkable
class ResidualBlock(Protocol):
    """A block that adds a branch to its input and names the branch's last batch-norm."""

    def residual_branch_norm(self) -> nn.BatchNorm2d | None:
        """The batch-norm just before the residual add, or ``None`` if this block adds nothing."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, a zero-argument builder and its (batch 1) input shape."""

    name: str
    builder: Callable[[], nn.Module]
    input_shape: tuple[int, int, int, int]


_REGISTRY: dict[str, ModelSpec] = {}


def init_weights(model: nn.Module, *, residual_scale: float = RESIDUAL_SCALE) -> nn.Module:
    """Re-initialise ``model`` in place with the scheme in this module's docstring; return it.

    Draws from torch's global random generator, so seed it (``build_model`` does) for
    reproducible weights.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.uniform_(module.bias, -0.05, 0.05)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.in_features))
                if module.bias is not None:
                    nn.init.uniform_(module.bias, -0.05, 0.05)
            elif isinstance(module, nn.BatchNorm2d):
                _init_batch_norm(module)
        for module in model.modules():
            if isinstance(module, ResidualBlock):
                norm = module.residual_branch_norm()
                if norm is not None and norm.affine:
                    norm.weight.mul_(residual_scale)
                    norm.bias.mul_(residual_scale)
    return model


def _init_batch_norm(norm: nn.BatchNorm2d) -> None:
    if norm.affine:
        nn.init.uniform_(norm.weight, 0.7, 1.3)
        nn.init.uniform_(norm.bias, -0.2, 0.2)
    if norm.running_mean is not None and norm.running_var is not None:
        norm.running_mean.uniform_(-0.2, 0.2)
        norm.running_var.uniform_(0.75, 1.5)
    if norm.num_batches_tracked is not None:
        norm.num_batches_tracked.zero_()


def register_model(
    name: str,
    builder: Callable[[], nn.Module],
    input_shape: Sequence[int],
    *,
    replace: bool = False,
) -> None:
    """Make ``builder`` available as ``name``, with ``input_shape`` (N, C, H, W), N usually 1.

    ``builder`` takes no argument and returns a fresh ``nn.Module``; it should draw its random
    weights from torch's global generator so that ``build_model``'s seed governs them.
    Registering a name twice raises ``ValueError`` unless ``replace=True``.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"model name {name!r} is not valid: use letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    if not callable(builder):
        raise TypeError(f"builder for model {name!r} is not callable: {builder!r}")
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(
        isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape
    ):
        raise ValueError(
            f"input shape {input_shape!r} of model {name!r} must be 4 positive ints (N, C, H, W)"
        )
    if name in _REGISTRY and not replace:
        raise ValueError(f"model {name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[name] = ModelSpec(name, builder, (shape[0], shape[1], shape[2], shape[3]))


def list_models() -> list[str]:
    """The names of all registered models, sorted."""
    return sorted(_REGISTRY)


def _spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(list_models())
        raise PartitionError(f"unknown model {name!r}; known models: {known}") from None


def model_input_shape(name: str) -> tuple[int, int, int, int]:
    """The (N, C, H, W) input shape registered for model ``name`` (N is 1 for built-ins)."""
    return _spec(name).input_shape


def build_model(name: str, seed: int = 0) -> nn.Module:
    """Build model ``name`` with weights determined by ``seed``, in eval mode.

    The CPU generator is seeded inside ``torch.random.fork_rng``, so the caller's random state
    is untouched. Raises ``PartitionError`` listing the known names if ``name`` is unknown.
    """
    return build_seeded(_spec(name).builder, name, seed)


def build_seeded(builder: Callable[[], object], name: str, seed: int = 0) -> nn.Module:
    """``builder()`` (of model ``name``) with torch's CPU generator seeded by ``seed``, in eval
    mode; the generator is seeded inside ``torch.random.fork_rng``, so the caller's random
    state is untouched. A builder that returns something else than an ``nn.Module`` is a
    ``TypeError`` naming the model."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(as_seed(seed))
        model = builder()
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"builder of model {name!r} returned {type(model).__name__}, not an nn.Module"
        )
    return model.eval()


_INITIALISED: Final = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def _zoo(constructor: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    # The constructor runs on the meta device, so torch's default initialisation (as costly as
    # init_weights: a second pass over VGG's 138M weights) is skipped; init_weights then fills
    # every parameter and buffer of the empty CPU tensors.
    def build() -> nn.Module:
        with torch.device("meta"):
            model = constructor()
        for module in model.modules():
            owns_state = any(True for _ in module.parameters(recurse=False)) or any(
                True for _ in module.buffers(recurse=False)
            )
            if owns_state and not isinstance(module, _INITIALISED):
                raise TypeError(f"init_weights does not initialise {type(module).__name__}")
        return init_weights(model.to_empty(device="cpu"))

    build.__doc__ = f"Build {constructor.__name__} with ``init_weights``."
    return build


_IMAGENET: Final = (1, 3, 224, 224)
_DARKNET: Final = (1, 3, 416, 416)
_YOLOV8: Final = (1, 3, 640, 640)

for _name, _constructor, _shape in (
    ("densenet121", densenet121, _IMAGENET),
    ("efficientnet_b0", efficientnet_b0, _IMAGENET),
    ("mobilenet_v2", mobilenet_v2, _IMAGENET),
    ("mobilenet_v3_large", mobilenet_v3_large, _IMAGENET),
    ("mobilenet_v3_small", mobilenet_v3_small, _IMAGENET),
    ("resnet18", resnet18, _IMAGENET),
    ("resnet50", resnet50, _IMAGENET),
    ("resnet101", resnet101, _IMAGENET),
    ("shufflenet_v2", shufflenet_v2, _IMAGENET),
    ("tinycnn", tinycnn, (1, 3, 32, 32)),
    ("vgg16", vgg16, _IMAGENET),
    ("vgg19", vgg19, _IMAGENET),
    ("yolov2", yolov2, _DARKNET),
    ("yolov2_tiny", yolov2_tiny, _DARKNET),
    ("yolov8n", yolov8n, _YOLOV8),
):
    register_model(_name, _zoo(_constructor), _shape)
