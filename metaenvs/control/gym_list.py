"""A task distribution given as lists of Gymnasium env ids, one task per env id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from metaenvs.core import RLTaskDistribution, Task
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.spaces import adaptation_for
from metaenvs.validation import positive_int


class GymEnvList(RLTaskDistribution):
    """Each task is one registered Gymnasium env; the splits are given as lists of ids.

    Register your own with::

        metaenvs.register("Mine/ClassicControl-v0", "metaenvs.control:GymEnvList",
                          kwargs={"train": ["CartPole-v1"], "test": ["Acrobot-v1"]})

    Envs may differ in the size of their (flat Box) observations and in their number of discrete
    actions: the protocol's agent then gets fresh first layers (``adapt_input_layer``) and action
    heads (``adapt_action_head``) per task, and the rest of the policy is meta-learned. Other
    differences are refused when the distribution is made, naming the two envs.

    Args:
        train: Env ids for meta-training.
        test: Held-out env ids.
        val: Env ids for validation.
        env_kwargs: Keyword arguments passed to ``gymnasium.make`` per env id.
        budget: Protocol budget in env timesteps.
        algo: ``"a2c"`` or ``"ppo"``, the protocol's agent.
        seed: Unused (the lists are fixed); kept for the uniform ``make`` signature.
    """

    seed_decides_splits = False
    held_out_tasks_are_a_sample = False  # a fixed, listed set

    def __init__(
        self,
        train: Sequence[str],
        test: Sequence[str],
        val: Sequence[str] = (),
        env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        budget: int = 25_000,
        algo: str = "a2c",
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.lists = {"train": list(train), "val": list(val), "test": list(test)}
        self.env_kwargs = {k: dict(v) for k, v in (env_kwargs or {}).items()}
        self.budget = positive_int("budget", budget)
        self.algo = algo
        for split, ids in self.lists.items():
            for env_id in ids:
                if env_id not in gym.registry:
                    raise InvalidArgumentError(
                        f"{split} env id {env_id!r} is not registered with Gymnasium; "
                        "import the package that registers it, or fix the spelling."
                    )
        overlap = set(self.lists["train"]) & set(self.lists["test"])
        if overlap:
            raise InvalidArgumentError(f"Env ids {sorted(overlap)} are in both train and test splits.")
        self.adaptation = self._adaptation()

    def _adaptation(self) -> dict[str, bool]:
        """The agent flags the listed envs need to share one policy, or a refusal naming the envs.

        Envs that differ in the size of a flat Box observation need ``adapt_input_layer``; envs that
        differ in their number of discrete actions need ``adapt_action_head``. Anything else (a
        Discrete and a Box action space, image and vector observations) cannot share a policy.
        """
        spaces = {}
        for split, ids in self.lists.items():
            for env_id in ids:
                env = gym.make(env_id, **self.env_kwargs.get(env_id, {}))
                spaces[f"{split}/{env_id}"] = (env.observation_space, env.action_space)
                env.close()
        try:
            return adaptation_for(spaces)
        except IncompatibleAgentError as exc:
            raise InvalidArgumentError(
                f"{exc} List envs that one policy can serve, or register them as separate distributions."
            ) from exc

    def _split_sizes(self) -> dict[str, int | None]:
        return {split: len(ids) for split, ids in self.lists.items() if ids}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        env_id = self.lists[split][index]
        return env_id, {"env_id": env_id, "env_kwargs": self.env_kwargs.get(env_id, {})}

    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        task = self.check_task(task)
        return gym.make(task.params["env_id"], render_mode=render_mode, **task.params["env_kwargs"])

    def default_protocol(self) -> Protocol:
        agent = {
            "type": "actor_critic",
            "algo": self.algo,
            "n_envs": 8,
            "eval_episodes": 10,
            **self.adaptation,
        }
        return self.return_protocol(self.budget, agent)
