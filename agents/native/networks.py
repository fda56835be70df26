"""The native actor-critic's network: plain PyTorch, laid out and initialised as SB3's policies are.

:class:`ActorCriticNet` has the parameter names of SB3's ``ActorCriticPolicy``
(``features_extractor``, ``mlp_extractor.policy_net`` / ``value_net``, ``action_net``,
``value_net``, ``log_std``) and the same default architecture, so an initialization moves between
:class:`~agents.ActorCritic` and :class:`~agents.NativeActorCritic` unchanged and meta-learners
select the same prefixes (``Leap(params=["features_extractor"])``) on both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
POLICIES = ("MlpPolicy", "CnnPolicy")
GAINS = {
    "features_extractor": math.sqrt(2),
    "mlp_extractor": math.sqrt(2),
    "action_net": 0.01,
    "value_net": 1.0,
}
"""SB3's orthogonal-initialisation gains per module (``ActorCriticPolicy._build``)."""


def is_image(space: gym.Space) -> bool:
    """A uint8 ``(channels, height, width)`` Box: scaled to [0, 1] on the way in (SB3's rule)."""
    return isinstance(space, gym.spaces.Box) and space.dtype == "uint8" and len(space.shape) == 3


class Mnih2013(nn.Module):
    """Mnih et al. (2013): 16 8x8/4 and 32 4x4/2 convolutions, then 256 ReLU units."""

    def __init__(self, shape: Sequence[int], features_dim: int = 256) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(shape[0], 16, 8, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(x))


class Flatten(nn.Flatten):
    """SB3's ``FlattenExtractor`` (no parameters)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.features_dim = math.prod(shape)


EXTRACTORS = {"mnih2013": Mnih2013, "flatten": Flatten}


class MlpExtractor(nn.Module):
    """Separate policy and value MLPs over the features (SB3's ``MlpExtractor``)."""

    def __init__(self, width: int, pi: Sequence[int], vf: Sequence[int], activation: str) -> None:
        super().__init__()
        self.policy_net, self.latent_dim_pi = _mlp(width, pi, activation)
        self.value_net, self.latent_dim_vf = _mlp(width, vf, activation)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy_net(features), self.value_net(features)


def _mlp(width: int, sizes: Sequence[int], activation: str) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
        width = int(size)
    return nn.Sequential(*layers), width


class ActorCriticNet(nn.Module):
    """Policy and value function of one observation and action space.

    Args:
        observation_space: A Box (images: uint8 ``(C, H, W)``).
        action_space: Discrete (categorical policy) or Box (diagonal Gaussian, state-independent
            ``log_std``).
        policy: ``"MlpPolicy"`` (flattened observations) or ``"CnnPolicy"`` (images).
        features_extractor: ``"mnih2013"`` (default of ``CnnPolicy``) or ``"flatten"``.
        net_arch: ``{"pi": [...], "vf": [...]}`` hidden sizes after the extractor (SB3's default 64, 64).
        activation_fn: ``"tanh"`` (SB3's default) or ``"relu"``.
        log_std_init: Initial log standard deviation of a Gaussian policy.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        policy: str = "MlpPolicy",
        features_extractor: str | None = None,
        net_arch: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
        activation_fn: str = "tanh",
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        if policy not in POLICIES:
            raise InvalidArgumentError(f"policy must be one of {list(POLICIES)}, got {policy!r}.")
        if not isinstance(observation_space, gym.spaces.Box):
            raise IncompatibleAgentError(
                f"The native actor-critic needs Box observations, got {observation_space}; wrap the env "
                "(e.g. gymnasium.wrappers.FlattenObservation)."
            )
        extractor = features_extractor or ("mnih2013" if policy == "CnnPolicy" else "flatten")
        if extractor not in EXTRACTORS:
            raise InvalidArgumentError(
                f"Unknown features_extractor {extractor!r}; known: {list(EXTRACTORS)}."
            )
        if activation_fn not in ACTIVATIONS:
            raise InvalidArgumentError(
                f"activation_fn must be one of {list(ACTIVATIONS)}, got {activation_fn!r}."
            )
        arch = {"pi": [64, 64], "vf": [64, 64]} if net_arch is None else net_arch
        if not isinstance(arch, Mapping):
            arch = {"pi": list(arch), "vf": list(arch)}
        self.images = is_image(observation_space)
        self.features_extractor = EXTRACTORS[extractor](observation_space.shape)
        width = self.features_extractor.features_dim
        self.mlp_extractor = MlpExtractor(width, arch.get("pi", []), arch.get("vf", []), activation_fn)
        if isinstance(action_space, gym.spaces.Discrete):
            self.continuous = False
            self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, int(action_space.n))
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.continuous = True
            self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, int(action_space.shape[0]))
            self.log_std = nn.Parameter(torch.full((int(action_space.shape[0]),), float(log_std_init)))
        else:
            raise IncompatibleAgentError(
                f"The native actor-critic supports Discrete and 1-d Box actions, got {action_space}."
            )
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.log_std_init = float(log_std_init)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(action logits or Gaussian means, values)`` of a batch of raw observations."""
        x = obs.float().div_(255.0) if self.images else obs.float()
        latent_pi, latent_vf = self.mlp_extractor(self.features_extractor(x))
        return self.action_net(latent_pi), self.value_net(latent_vf).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values only."""
        x = obs.float().div_(255.0) if self.images else obs.float()
        return self.value_net(self.mlp_extractor.value_net(self.features_extractor(x))).squeeze(-1)

    def log_prob_entropy(
        self, head: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and the entropy, under the policy whose output is ``head``."""
        if self.continuous:
            log_std = self.log_std.expand_as(head)
            var = torch.exp(2 * log_std)
            log_prob = -((actions - head) ** 2) / (2 * var) - log_std - 0.5 * math.log(2 * math.pi)
            entropy = 0.5 + 0.5 * math.log(2 * math.pi) + log_std
            return log_prob.sum(-1), entropy.sum(-1)
        log_p = torch.log_softmax(head, dim=-1)
        return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), -(log_p.exp() * log_p).sum(-1)

    def sample(
        self, head: torch.Tensor, generator: torch.Generator | None, deterministic: bool = False
    ) -> torch.Tensor:
        """Actions drawn from the policy (``generator`` gives every draw), or its mode."""
        if self.continuous:
            if deterministic:
                return head
            noise = torch.randn(head.shape, generator=generator, device=head.device, dtype=head.dtype)
            return head + self.log_std.exp() * noise
        if deterministic:
            return head.argmax(-1)
        return torch.multinomial(torch.softmax(head, dim=-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def initialise(net: nn.Module, seed: int) -> None:
    """SB3's scheme: orthogonal weights with :data:`GAINS`, zero biases, ``log_std_init``.

    Each module draws from its own generator, seeded by ``seed`` and the module's name, so a module's
    initial values never depend on another's shape (an action head of another size leaves the
    encoder's and the value head's draws unchanged).
    """
    from metaenvs.seeding import derive_seed

    for name, gain in GAINS.items():
        module = getattr(net, name, None)
        if module is None:
            continue
        generator = torch.Generator(device=next(net.parameters()).device)
        generator.manual_seed(derive_seed(seed, name))
        for sub in module.modules():
            if isinstance(sub, (nn.Linear, nn.Conv2d)):
                weight = torch.empty(sub.weight.shape, device=sub.weight.device)  # any memory format
                sub.weight.copy_(nn.init.orthogonal_(weight, gain=gain, generator=generator))
                if sub.bias is not None:
                    sub.bias.zero_()
    if getattr(net, "continuous", False):
        net.log_std.fill_(net.log_std_init)


def network_kwargs(policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON policy kwargs of a recipe as :class:`ActorCriticNet`'s, naming an unknown one."""
    known = {"features_extractor", "net_arch", "activation_fn", "log_std_init"}
    unknown = sorted(set(policy_kwargs) - known)
    if unknown:
        raise InvalidArgumentError(
            f"Unknown policy_kwargs {unknown} for the native actor-critic; known: {sorted(known)}."
        )
    return dict(policy_kwargs)
