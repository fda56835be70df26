"""Meta-World's benchmarks, built in this process, and one task's env as a Gymnasium env.

The task lists come from Meta-World's own benchmark classes (``metaworld.ML1``, ``ML10``,
``ML45``) for the distribution's seed; nothing here copies their goal sampler. A benchmark is built
once per process (ML45 takes about 30 s on one core) and kept.

Meta-World hands a task to its env as a ``metaworld.Task`` whose ``data`` is pickled, and its
``set_task`` unpickles it. metaenvs never reads such bytes from a file or a user: a
:class:`~metaenvs.core.Task` holds only JSON (class, goal index, goal vector), and its env is set
from the benchmark this process built from the seed, after the goal vector was checked against it.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from metaenvs.errors import InvalidArgumentError, require

BENCHMARKS = ("ML1", "ML10", "ML45")
MAX_PATH_LENGTH = 500
"""Meta-World's episode length (``SawyerXYZEnv.max_path_length``): an episode truncates here."""

_BUILT: dict[tuple[str, str | None, int], Any] = {}
_LOCK = threading.Lock()


def metaworld_version() -> str:
    """The installed Meta-World's version (raises the install line if it is missing)."""
    require("metaworld", "metaworld")
    return importlib.metadata.version("metaworld")


def ml1_env_names() -> list[str]:
    """Every env Meta-World's ML1 accepts (``"reach-v3"``, ...), sorted."""
    return sorted(require("metaworld", "metaworld").ML1.ENV_NAMES)


def benchmark(name: str, env_name: str | None, seed: int) -> Any:
    """Meta-World's own benchmark object ``name`` (``ML1(env_name)``, ``ML10``, ``ML45``) for ``seed``."""
    metaworld = require("metaworld", "metaworld")
    key = (name, env_name, int(seed))
    with _LOCK:
        if key not in _BUILT:
            cls = getattr(metaworld, name)
            _BUILT[key] = cls(env_name, seed=int(seed)) if name == "ML1" else cls(seed=int(seed))
        return _BUILT[key]


def goal_vectors(env_cls: type, mw_tasks: list[Any]) -> list[list[float]]:
    """The goal (``rand_vec``) Meta-World froze into each of ``mw_tasks`` (all of class ``env_cls``).

    Read back from one env of the class after its own ``set_task`` (metaenvs unpickles nothing).
    """
    env = env_cls()
    try:
        goals = []
        for mw_task in mw_tasks:
            env.set_task(mw_task)
            goals.append([float(v) for v in np.asarray(env._last_rand_vec, dtype=np.float64).ravel()])
        return goals
    finally:
        env.close()


class MetaWorldTaskEnv(gym.Env):
    """One Meta-World task (a class with a frozen goal) as a Gymnasium env.

    Meta-World's ``SawyerXYZEnv`` ignores ``reset(seed=...)`` (it is seeded with its own ``seed()``);
    this env seeds it there, so Gymnasium's seeding rule holds. Every step's ``info`` carries
    Meta-World's ``success`` flag and ``is_success`` (SB3's name for an episode's success): whether
    ``success`` was true at any step of the episode so far, Meta-World's convention for a
    successful episode. Episodes truncate at 500 steps and never terminate.

    Args:
        env_cls: The Meta-World env class (``benchmark.train_classes[name]``).
        mw_task: The benchmark's task to set.
        render_mode: Passed to Meta-World's env.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array", "depth_array", "human"],
        "render_fps": 80,
    }

    def __init__(self, env_cls: type, mw_task: Any, render_mode: str | None = None) -> None:
        self.env = env_cls(render_mode=render_mode)
        self.env.set_task(mw_task)
        self.render_mode = render_mode
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.max_path_length = int(self.env.max_path_length)
        self._succeeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.env.seed(int(seed))
        obs, info = self.env.reset()
        self._succeeded = False
        return obs, {**info, "is_success": False}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise InvalidArgumentError(
                f"Meta-World actions have shape {self.action_space.shape}, got {action.shape}."
            )
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._succeeded = self._succeeded or bool(info["success"])
        return obs, float(reward), bool(terminated), bool(truncated), {**info, "is_success": self._succeeded}

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()
