"""How the SB3 agent's hook sees every gradient step without copying SB3's code.

A ``TorchFunctionMode`` (:class:`LossTap`), active only inside ``train()``, records the tensor that
``backward()`` is called on; optimizer step hooks (:class:`GradientStepEvents`) then fire
``on_inner_step`` / ``on_step_end`` with it; :func:`check_gradient_events` fails loudly when the hooks
saw fewer gradient steps than SB3's own rules imply (an SB3 whose training loop they do not reach).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback
from torch.overrides import TorchFunctionMode

from agents.curves import LearningCurve
from agents.hooks import Hook, InnerStepContext, StepEndContext, named_grads
from agents.parameters import finite_loss
from metaenvs.core import Task
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError

if TYPE_CHECKING:
    from agents.actor_critic import ActorCritic


class LossTap(TorchFunctionMode):
    """Records the tensor that ``Tensor.backward`` is called on while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.loss: torch.Tensor | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.backward:
            self.loss = args[0].detach()
        return func(*args, **(kwargs or {}))


class _TappedTrain:
    """Mixin: run SB3's own ``train()`` under a :class:`LossTap`."""

    loss_tap: LossTap

    def train(self) -> None:
        with self.loss_tap:
            super().train()  # type: ignore[misc]


class HookedA2C(_TappedTrain, A2C):
    """SB3 A2C whose ``train()`` records the back-propagated loss."""


class HookedPPO(_TappedTrain, PPO):
    """SB3 PPO whose ``train()`` records the back-propagated loss."""


ALGORITHMS = {"a2c": HookedA2C, "ppo": HookedPPO}
VECTORIZERS = ("auto", "dummy")
EVAL_MODES = ("rollouts", "training")


def resolve_policy_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON policy kwargs to SB3's: ``{"features_extractor": "mnih2013"}`` names a class."""
    from agents.models import FEATURE_EXTRACTORS

    resolved = dict(kwargs)
    name = resolved.pop("features_extractor", None)
    if name is not None:
        if name not in FEATURE_EXTRACTORS:
            raise InvalidArgumentError(
                f"Unknown features_extractor {name!r}; known: {', '.join(FEATURE_EXTRACTORS)}."
            )
        resolved["features_extractor_class"] = FEATURE_EXTRACTORS[name]()
    return resolved


class EpisodeRecorder(BaseCallback):
    """Appends every finished episode's return to the learning curve (SB3 callback)."""

    def __init__(self, curve: LearningCurve) -> None:
        super().__init__()
        self.curve = curve

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.curve.append(self.num_timesteps, float(info["episode"]["r"]))
                if "is_success" in info:
                    self.curve.successes.append(float(info["is_success"]))
        return True


class SuccessRecorder:
    """``evaluate_policy`` callback: every counted episode's ``info["is_success"]`` at its last step."""

    def __init__(self) -> None:
        self.flags: list[bool] = []

    def __call__(self, local: Mapping[str, Any], _globals: Mapping[str, Any]) -> None:
        if local["done"] and "is_success" in local["info"]:
            self.flags.append(bool(local["info"]["is_success"]))

    def rate(self, episodes: int) -> float:
        """Fraction of the first ``episodes`` episodes that succeeded."""
        if len(self.flags) < episodes:
            raise InvalidArgumentError(
                f"The env reported success for {len(self.flags)} of {episodes} evaluation episodes; an env "
                "that reports info['is_success'] must report it at the end of every episode."
            )
        return float(np.mean(self.flags[:episodes]))


class GradientStepEvents:
    """Optimizer step hooks that turn SB3 gradient steps into ``on_inner_step`` / ``on_step_end``."""

    def __init__(self, agent: ActorCritic, task: Task, tap: LossTap, hook: Hook, curve: LearningCurve):
        self.agent, self.task, self.tap, self.hook, self.curve = agent, task, tap, hook, curve
        self.params = dict(agent.model.named_parameters())
        self.step = 0

    def before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        loss, self.tap.loss = self.tap.loss, None
        if loss is None:
            raise RuntimeError("optimizer.step() ran without a recorded backward(); is train() tapped?")
        self.curve.losses.append(finite_loss(loss, self.task, self.step))
        grads = named_grads(self.params)
        self.hook.on_inner_step(
            InnerStepContext(self.agent, self.task, self.step, loss, self.params, grads, optimizer)
        )

    def after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.hook.on_step_end(StepEndContext(self.agent, self.task, self.step, self.params, optimizer))
        self.step += 1


def expected_gradient_steps(algo: Any, timesteps: int) -> tuple[int, bool]:
    """``(steps, exact)``: the optimizer steps SB3's ``learn(timesteps)`` takes by its own rules.

    One ``train()`` per rollout of ``n_steps x n_envs`` timesteps: A2C steps once, PPO
    ``n_epochs x ceil(rollout / batch_size)`` times, or fewer when ``target_kl`` stops an epoch early
    (then ``exact`` is False and the count is an upper bound).
    """
    rollout = algo.n_steps * algo.n_envs
    rollouts = math.ceil(timesteps / rollout)
    if not hasattr(algo, "n_epochs"):
        return rollouts, True
    per_rollout = algo.n_epochs * math.ceil(rollout / algo.batch_size)
    return rollouts * per_rollout, getattr(algo, "target_kl", None) is None


def check_gradient_events(algo: Any, fired: int, timesteps: int) -> None:
    """Fail loudly if the hooks saw fewer gradient steps than SB3's ``learn`` must have taken."""
    import stable_baselines3

    expected, exact = expected_gradient_steps(algo, timesteps)
    if fired == expected or (not exact and 0 < fired <= expected):
        return
    raise IncompatibleAgentError(
        f"SB3 {stable_baselines3.__version__} {type(algo).__name__}.learn({timesteps}) took "
        f"{'at most ' if not exact else ''}{expected} gradient steps by its own rules, but the hooks saw "
        f"{fired}: this SB3 version trains in a way the hooks do not reach (an optimizer re-created "
        "inside train()?), so no meta-learner could see its inner steps. Use the SB3 version the suite "
        "was tested with (pyproject.toml)."
    )


def _implied_sizes(agent: ActorCritic, tensors: Mapping[str, torch.Tensor]) -> tuple[int | None, int | None]:
    """(flat observation size, action size) an MLP policy's parameters imply (``None``: not among them)."""
    weights = [f"{layer}.weight" for layer in agent._input_layers()]
    first = next((name for name in weights if name in tensors), None)
    obs = int(tensors[first].shape[1]) if first is not None else None
    act = int(tensors["action_net.weight"].shape[0]) if "action_net.weight" in tensors else None
    return obs, act


def check_init_spaces(agent: ActorCritic, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse an initialization made for other observation or action shapes than ``agent``'s, naming both."""
    theirs = _implied_sizes(agent, tensors)
    mine = _implied_sizes(agent, dict(agent.model.named_parameters()))
    adapted = (agent.adapt_input_layer, agent.adapt_action_head)  # those layers are the task's own
    for what, index in (("observations", 0), ("actions", 1)):
        if (
            not adapted[index]
            and theirs[index] is not None
            and mine[index] is not None
            and theirs[index] != mine[index]
        ):
            raise IncompatibleAgentError(
                f"The initialization was made for {what} of shape ({theirs[index]},) but this agent's "
                f"tasks have {what} of shape ({mine[index]},) (observation space "
                f"{agent.observation_space}, action space {agent.action_space}); meta-train an "
                "initialization on this distribution, or evaluate it on the one it was made for."
            )
