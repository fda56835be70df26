"""Default models, built from the small JSON model specs that distributions declare."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from metaenvs.errors import InvalidArgumentError

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


class MLP(nn.Sequential):
    """Fully connected network: ``Flatten`` then ``Linear``/activation pairs, then a linear head."""

    def __init__(
        self, in_features: int, out_features: int, hidden: Sequence[int] = (40, 40), activation: str = "tanh"
    ) -> None:
        if activation not in ACTIVATIONS:
            raise InvalidArgumentError(f"Unknown activation {activation!r}; use one of {list(ACTIVATIONS)}.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, int(h)), ACTIVATIONS[activation]()]
            width = int(h)
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)


class Conv4(nn.Sequential):
    """The few-shot vision network: 4 x [3x3 conv (``channels`` filters), 2x2 max-pool, BatchNorm, ReLU].

    Then a linear head. BatchNorm always uses the statistics of the current batch
    (``track_running_stats=False``), as MAML and Leap do, so the model has no buffers and
    every meta-learner sees only parameters.

    Args:
        input_shape: ``(channels, height, width)`` of one image.
        n_outputs: Number of classes.
        channels: Filters per convolution (64 in the literature).
        blocks: Number of conv blocks.
    """

    def __init__(
        self, input_shape: Sequence[int], n_outputs: int, channels: int = 64, blocks: int = 4
    ) -> None:
        if len(input_shape) != 3:
            raise InvalidArgumentError(
                f"conv4 needs image inputs shaped (channels, height, width), got {tuple(input_shape)}."
            )
        c, h, w = (int(v) for v in input_shape)
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [
                nn.Conv2d(c, channels, 3, padding=1),
                nn.MaxPool2d(2),
                nn.BatchNorm2d(channels, track_running_stats=False),
                nn.ReLU(),
            ]
            c, h, w = channels, h // 2, w // 2
        if h < 1 or w < 1:
            raise InvalidArgumentError(
                f"Images of shape {tuple(input_shape)} are too small for {blocks} pools."
            )
        layers += [nn.Flatten(), nn.Linear(c * h * w, n_outputs)]
        super().__init__(*layers)


class Point(nn.Module):
    """The "model" of an optimisation task: a point whose coordinates are the parameters.

    ``forward`` ignores the input values and returns the point once per input row.
    """

    def __init__(self, dim: int = 2, init: Sequence[float] | None = None) -> None:
        super().__init__()
        self.init = None if init is None else [float(v) for v in init]
        self.point = nn.Parameter(torch.zeros(dim))
        if self.init is not None:
            with torch.no_grad():
                self.point.copy_(torch.tensor(self.init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point.expand(x.shape[0], -1)


def build_model(spec: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
    """Build the model described by ``spec``: ``{"type": "mlp" | "conv4" | "point", ...options}``."""
    kind = spec.get("type")
    options = {k: v for k, v in spec.items() if k != "type"}
    if kind == "mlp":
        return MLP(math.prod(input_shape), n_outputs, **options)
    if kind == "conv4":
        return Conv4(input_shape, n_outputs, **options)
    if kind == "point":
        return Point(**options)
    raise InvalidArgumentError(f"Unknown model type {kind!r}; supported: 'mlp', 'conv4', 'point'.")


def mnih2013_extractor() -> type:
    """SB3 features extractor of Mnih et al. (2013): 16 8x8/4 and 32 4x4/2 convolutions, 256 units.

    Shared by the policy and value heads (the Leap paper's Atari actor-critic). Built lazily so
    that importing this module does not import stable-baselines3.
    """
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class Mnih2013CNN(BaseFeaturesExtractor):
        def __init__(self, observation_space: Any, features_dim: int = 256) -> None:
            super().__init__(observation_space, features_dim)
            channels = observation_space.shape[0]
            self.cnn = nn.Sequential(
                nn.Conv2d(channels, 16, 8, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(),
                nn.Flatten(),
            )  # fmt: skip
            with torch.no_grad():
                n_flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
            self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.linear(self.cnn(observations))

    return Mnih2013CNN


FEATURE_EXTRACTORS = {"mnih2013": mnih2013_extractor}


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise ``module`` from an explicit generator (PyTorch's default schemes).

    Linear and convolutional layers get PyTorch's default Kaiming-uniform weights and
    uniform biases; normalisation layers get ones and zeros; a :class:`Point` goes
    back to its declared start (or ``U[-1, 1]`` if it has none).
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_uniform_(sub.weight, a=math.sqrt(5), generator=generator)
            if sub.bias is not None:
                fan_in = sub.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(sub.bias, -bound, bound, generator=generator)
        elif isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if getattr(sub, "weight", None) is not None:
                nn.init.ones_(sub.weight)
                nn.init.zeros_(sub.bias)
            if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)):
                sub.reset_running_stats()
        elif isinstance(sub, Point):
            if sub.init is not None:
                sub.point.copy_(torch.tensor(sub.init, dtype=sub.point.dtype))
            else:
                nn.init.uniform_(sub.point, -1.0, 1.0, generator=generator)
    return module
