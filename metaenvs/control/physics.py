"""Classic-control envs whose physics parameters vary from task to task.

Each parameter has a separate, non-overlapping interval per split, so held-out
``test`` tasks are physically different from anything seen in meta-training
(extrapolation, not interpolation). ``train`` is infinite; ``val`` and ``test``
are fixed lists chosen by the distribution's seed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from metaenvs.core import RLTaskDistribution, Task
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int

Interval = tuple[float, float]


class PhysicsVaried(RLTaskDistribution):
    """Base class: a Gymnasium env id plus per-split intervals of physics parameters.

    Subclasses set :attr:`env_id`, :attr:`ranges` and implement :meth:`apply`.

    Args:
        val_tasks: Number of fixed validation tasks.
        test_tasks: Number of fixed held-out test tasks.
        budget: Protocol budget in env timesteps.
        seed: Fixes the validation and test tasks.
    """

    env_id: ClassVar[str]
    ranges: ClassVar[Mapping[str, Mapping[str, Interval]]]  # param -> split -> (low, high)
    protocol_agent: ClassVar[Mapping[str, Any]]
    renamed_kwargs: ClassVar = {"n_val": "val_tasks", "n_test": "test_tasks"}

    def __init__(self, val_tasks: int = 5, test_tasks: int = 10, budget: int = 25_000, seed: int = 0) -> None:
        super().__init__(seed)
        self.val_tasks = positive_int("val_tasks", val_tasks)
        self.test_tasks = positive_int("test_tasks", test_tasks)
        self.budget = positive_int("budget", budget)

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": None, "val": self.val_tasks, "test": self.test_tasks}

    def _draw(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        return {name: float(rng.uniform(*by_split[split])) for name, by_split in sorted(self.ranges.items())}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        return f"{index:04d}", self._draw(np.random.default_rng(derive_seed(self.seed, split, index)), split)

    def _sample_params(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        return self._draw(rng, split)

    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        task = self.check_task(task)
        env = gym.make(self.env_id, render_mode=render_mode)
        self.apply(env.unwrapped, task.params)
        return env

    @abstractmethod
    def apply(self, env: gym.Env, params: Mapping[str, float]) -> None:
        """Write ``params`` into the unwrapped env."""

    def default_protocol(self) -> Protocol:
        return self.return_protocol(self.budget, self.protocol_agent)


class CartPolePhysics(PhysicsVaried):
    """CartPole-v1 with varied pole half-length, pole mass, cart mass and push force."""

    env_id = "CartPole-v1"
    ranges: ClassVar = {
        "length": {"train": (0.25, 0.75), "val": (0.75, 0.9), "test": (0.9, 1.25)},
        "masspole": {"train": (0.05, 0.15), "val": (0.15, 0.2), "test": (0.2, 0.35)},
        "masscart": {"train": (0.5, 1.5), "val": (1.5, 1.75), "test": (1.75, 2.5)},
        "force_mag": {"train": (8.0, 12.0), "val": (12.0, 13.0), "test": (13.0, 16.0)},
    }
    protocol_agent: ClassVar = {"type": "actor_critic", "algo": "a2c", "n_envs": 8, "eval_episodes": 10}

    def apply(self, env: gym.Env, params: Mapping[str, float]) -> None:
        env.length = params["length"]
        env.masspole = params["masspole"]
        env.masscart = params["masscart"]
        env.force_mag = params["force_mag"]
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length


class PendulumPhysics(PhysicsVaried):
    """Pendulum-v1 with varied gravity, mass and length (continuous actions)."""

    env_id = "Pendulum-v1"
    ranges: ClassVar = {
        "g": {"train": (8.0, 10.5), "val": (10.5, 11.0), "test": (11.0, 13.0)},
        "m": {"train": (0.6, 1.2), "val": (1.2, 1.35), "test": (1.35, 1.6)},
        "l": {"train": (0.6, 1.2), "val": (1.2, 1.3), "test": (1.3, 1.5)},
    }
    protocol_agent: ClassVar = {"type": "actor_critic", "algo": "ppo", "n_envs": 4, "eval_episodes": 5}

    def apply(self, env: gym.Env, params: Mapping[str, float]) -> None:
        env.g, env.m, env.l = params["g"], params["m"], params["l"]
