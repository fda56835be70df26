"""Vector envs for the native actor-critic: same-step autoreset, episode records, a per-agent cache.

:func:`open_vector_env` gives ``n`` copies of a task as a Gymnasium ``VectorEnv`` that resets a
sub-environment in the step it ends (``AutoresetMode.SAME_STEP``, the final observation in
``info["final_obs"]`` for SB3's timeout bootstrap): the task's native vector env (ale-py's threaded
``AtariVectorEnv``) where it has one, else Gymnasium's ``SyncVectorEnv`` / ``AsyncVectorEnv`` over
the task's env factory. :func:`episode_ends` reads every finished episode's return (the env's own
record, raw before reward clipping where the env keeps one) and success flag.

:class:`EnvCache` keeps the vector envs of the last few tasks open, so a second ``learn`` on the same
game does not reload its ROMs; a cached env is reset with the run's seed, which makes it
indistinguishable from a fresh one (tested).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from agents.vec_env import records_episodes
from metaenvs.core import Task

VECTORIZERS = ("auto", "sync", "async")


@dataclass(frozen=True)
class EpisodeEnd:
    """One finished episode: the sub-environment, its return, and its success where the env reports it."""

    env: int
    ret: float
    success: float | None


def open_vector_env(task: Task, num_envs: int, vectorizer: str = "auto") -> VectorEnv:
    """``num_envs`` copies of ``task`` with same-step autoreset and ``info["episode"]`` records."""
    if vectorizer == "auto" and task.native_vector_env:
        return task.make_vector_env(num_envs)  # ale-py's: same-step, raw episode records
    factory = task._distribution().env_factory(task)
    probe = factory()
    try:
        own = records_episodes(probe)
    finally:
        probe.close()
    cls = gym.vector.AsyncVectorEnv if vectorizer == "async" else gym.vector.SyncVectorEnv
    env = cls([factory] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    # an env that records its own episodes keeps them (raw); else record them here
    return env if own else gym.wrappers.vector.RecordEpisodeStatistics(env)


def _masked(infos: dict[str, Any], key: str, done: np.ndarray) -> tuple[Any, np.ndarray] | None:
    if key not in infos:
        return None
    mask = np.asarray(infos.get(f"_{key}", done), dtype=bool)
    return infos[key], mask


def episode_ends(infos: dict[str, Any], done: np.ndarray) -> list[EpisodeEnd]:
    """The episodes that ended in this step, from the vector env's infos (see module docs)."""
    if not done.any():
        return []
    final = infos.get("final_info", {})
    record = _masked(infos, "episode", done) or _masked(final, "episode", done)
    if record is None:
        raise RuntimeError("the vector env ended an episode without an info['episode'] record")
    episode, mask = record
    success = _masked(final, "is_success", done)
    ends = []
    for i in np.flatnonzero(done & mask):
        flag = float(success[0][i]) if success is not None and success[1][i] else None
        ends.append(EpisodeEnd(int(i), float(episode["r"][i]), flag))
    return ends


def final_observations(infos: dict[str, Any], truncated: np.ndarray) -> dict[int, np.ndarray]:
    """The last observation of every sub-environment truncated (not terminated) in this step."""
    if not truncated.any():
        return {}
    final = infos["final_obs"]
    return {int(i): np.asarray(final[i]) for i in np.flatnonzero(truncated)}


class EnvCache:
    """The vector envs of the last ``size`` tasks an agent trained on, kept open between calls."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._envs: OrderedDict[tuple, VectorEnv] = OrderedDict()

    def get(self, task: Task, num_envs: int, vectorizer: str) -> VectorEnv:
        """The cached vector env of ``task`` (opened on first use; the least recent one closed)."""
        key = (task._distribution().spec.to_json(), task.to_json(), num_envs, vectorizer)
        if key in self._envs:
            self._envs.move_to_end(key)
            return self._envs[key]
        env = open_vector_env(task, num_envs, vectorizer)
        self._envs[key] = env
        while len(self._envs) > self.size:
            self._envs.popitem(last=False)[1].close()
        return env

    def close(self) -> None:
        """Close every cached env."""
        while self._envs:
            self._envs.popitem()[1].close()

    def __len__(self) -> int:
        return len(self._envs)
