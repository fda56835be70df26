"""A task distribution given as lists of Gymnasium env ids, one task per env id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from metaenvs.core import RLTaskDistribution, Task
from metaenvs.errors import InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.validation import positive_int


class GymEnvList(RLTaskDistribution):
    """Each task is one registered Gymnasium env; the splits are given as lists of ids.

    Register your own with::

        metaenvs.register("Mine/ClassicControl-v0", "metaenvs.control:GymEnvList",
                          kwargs={"train": ["CartPole-v1"], "test": ["Acrobot-v1"]})

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

    def _split_sizes(self) -> dict[str, int | None]:
        return {split: len(ids) for split, ids in self.lists.items() if ids}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        env_id = self.lists[split][index]
        return env_id, {"env_id": env_id, "env_kwargs": self.env_kwargs.get(env_id, {})}

    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        task = self.check_task(task)
        return gym.make(task.params["env_id"], render_mode=render_mode, **task.params["env_kwargs"])

    def default_protocol(self) -> Protocol:
        agent = {"type": "actor_critic", "algo": self.algo, "n_envs": 8, "eval_episodes": 10}
        return self.return_protocol(self.budget, agent)
