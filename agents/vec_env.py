"""SB3's ``VecEnv`` contract on top of a Gymnasium ``VectorEnv`` that resets in the same step.

stable-baselines3 steps a ``VecEnv``: ``step`` returns ``(obs, rewards, dones, infos)`` with
one info dict per sub-environment, a finished sub-environment is already reset, and its
last observation is in ``info["terminal_observation"]``. A Gymnasium vector env in
``AutoresetMode.SAME_STEP`` (ale-py's native ``AtariVectorEnv``) has the same timing and
returns dict-of-arrays infos with ``final_obs``; :class:`GymnasiumVecEnv` converts one
into the other without copying the observation batch more than once.

Also here: scoring episodes from the envs' own ``info["episode"]`` records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn
from torch import nn

from metaenvs.errors import InvalidArgumentError


class GymnasiumVecEnv(VecEnv):
    """Present a same-step-autoreset Gymnasium ``VectorEnv`` as an SB3 ``VecEnv``.

    Args:
        env: The vector env; its ``metadata["autoreset_mode"]`` must be ``SAME_STEP``.

    Raises:
        InvalidArgumentError: If the env resets in the next step (Gymnasium's default), which
            SB3's contract cannot express.
    """

    def __init__(self, env: VectorEnv) -> None:
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise InvalidArgumentError(
                f"GymnasiumVecEnv needs a vector env with autoreset_mode=SAME_STEP, got {mode!r}; build "
                "it with autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP, or use SB3's DummyVecEnv."
            )
        self.env = env
        self.render_mode = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self):
        seed = self._seeds[0]
        obs, infos = self.env.reset(seed=seed) if seed is not None else self.env.reset()
        self.reset_infos = self._split(infos)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        out = self._split(infos)
        final = infos.get("final_obs")
        for i in np.flatnonzero(dones):
            out[i]["terminal_observation"] = final[i]
            out[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        for i in np.flatnonzero(~dones):
            out[i]["TimeLimit.truncated"] = False
        return obs, np.asarray(rewards, dtype=np.float32), dones, out

    def _split(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's dict of arrays (``key`` plus mask ``_key``) to one dict per sub-environment."""
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in infos.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            mask = infos.get(f"_{key}")
            if isinstance(value, dict):  # e.g. "episode": {"r": array, "l": array, "t": array}
                for i in range(self.num_envs) if mask is None else np.flatnonzero(mask):
                    out[i][key] = {k: v[i].item() for k, v in value.items()}
            else:
                for i in range(self.num_envs) if mask is None else np.flatnonzero(mask):
                    out[i][key] = value[i].item() if isinstance(value[i], np.generic) else value[i]
        return out

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(self._indices(indices))
        value = getattr(self.env, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise InvalidArgumentError(f"Cannot set {attr_name!r} on sub-environments of a native vector env.")

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any):
        raise InvalidArgumentError(
            f"Cannot call {method_name!r} on sub-environments of a native vector env (not Python envs)."
        )

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


def records_episodes(env: gym.Env) -> bool:
    """Whether ``env`` (or a wrapper inside it) is Gymnasium's ``RecordEpisodeStatistics``."""
    while True:
        if isinstance(env, gym.wrappers.RecordEpisodeStatistics):
            return True
        if not isinstance(env, gym.Wrapper):
            return False
        env = env.env


def recorded_returns(model: nn.Module, vec_env: VecEnv, episodes: int) -> list[float]:
    """Deterministic rollouts; the ``info["episode"]["r"]`` of ``episodes`` finished episodes.

    Sub-environment ``i`` of ``n`` contributes its first ``(episodes + i) // n`` episodes (SB3's
    quota in ``evaluate_policy``), so short episodes are not over-represented.
    """
    n = vec_env.num_envs
    targets = [(episodes + i) // n for i in range(n)]
    per_env: list[list[float]] = [[] for _ in range(n)]
    obs = vec_env.reset()
    while any(len(done) < target for done, target in zip(per_env, targets, strict=True)):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, _, infos = vec_env.step(action)
        for i, info in enumerate(infos):
            if "episode" in info and len(per_env[i]) < targets[i]:
                per_env[i].append(float(info["episode"]["r"]))
    return [value for returns in per_env for value in returns]
