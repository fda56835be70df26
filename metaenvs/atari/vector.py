"""The fast path: ale-py's native, multi-threaded ``AtariVectorEnv`` under the same protocol.

:func:`make_atari_vector_env` builds ``num_envs`` copies of one game in C++ (emulation,
grey conversion, max-pooling, INTER_AREA resize and frame stacking all happen there) and
gives them the semantics of :func:`~metaenvs.atari.envs.make_atari_env`:

* the Machado et al. (2018) settings of :class:`~metaenvs.atari.envs.AtariConfig` (sticky
  actions, no fire-reset, no no-op starts, game over ends an episode, 108k-frame cap);
* sub-environments reset in the same step they finish (``AutoresetMode.SAME_STEP``), with
  the last observation in ``info["final_obs"]`` (what SB3's ``VecEnv`` contract needs);
* ``info["episode"]`` carries the **raw** game score and length (Gymnasium's vector
  ``RecordEpisodeStatistics`` placed before reward clipping); training rewards are
  clipped to their sign if ``config.clip_rewards``;
* ``reset(seed=s)`` seeds sub-environment ``i`` the way ale-py's single env does for seed
  ``s + i`` (``SeedSequence(s + i)``'s second word is the emulator seed), so the two paths
  see the same sticky-action draws. The native env takes only non-negative seeds, so the
  top bit of that word is dropped; the paths agree whenever it is clear. (No-op starts, a
  non-standard setting, are drawn from different generators on the two paths.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from metaenvs.atari.envs import AtariConfig
from metaenvs.errors import InvalidArgumentError, require
from metaenvs.validation import positive_int


def emulator_seed(seed: int) -> int:
    """The ALE seed that ale-py's ``AtariEnv.reset(seed=seed)`` sets, made non-negative."""
    return int(np.random.SeedSequence(seed).generate_state(2)[1]) & 0x7FFFFFFF


class _EmulatorSeeds(VectorWrapper):
    """Turns ``reset(seed=int)`` into one emulator seed per sub-environment (see module docs)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            return self.env.reset(options=options)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}.")
        seeds = np.array([emulator_seed(int(seed) + i) for i in range(self.num_envs)], dtype=np.int64)
        return self.env.reset(seed=seeds, options=options)


def make_atari_vector_env(game: str, config: AtariConfig, num_envs: int, num_threads: int = 0) -> VectorEnv:
    """``num_envs`` copies of ``game`` in ale-py's native vector env, under ``config``.

    Args:
        game: ALE ROM id (``"breakout"``).
        config: The env half of the protocol.
        num_envs: Number of sub-environments.
        num_threads: Emulator threads (0: one per core).

    Returns:
        A Gymnasium ``VectorEnv`` with ``(num_envs, frame_stack, screen_size, screen_size)``
        uint8 observations, same-step autoreset and raw episode scores in ``info["episode"]``.
    """
    num_envs = positive_int("num_envs", num_envs)
    if not isinstance(num_threads, int) or num_threads < 0:
        raise InvalidArgumentError(f"num_threads must be an int >= 0 (0: one per core), got {num_threads!r}.")
    vector_env = require("ale_py", "atari").vector_env.AtariVectorEnv
    env: VectorEnv = vector_env(
        game,
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=config.max_episode_frames,
        repeat_action_probability=config.sticky_action_prob,
        full_action_space=config.full_action_space,
        autoreset_mode=AutoresetMode.SAME_STEP,
        img_height=config.screen_size,
        img_width=config.screen_size,
        grayscale=True,
        stack_num=config.frame_stack,
        frameskip=config.frame_skip,
        maxpool=True,
        noop_max=config.noop_max,
        episodic_life=config.terminal_on_life_loss,
        reward_clipping=False,
        use_fire_reset=False,
    )
    env = _EmulatorSeeds(env)
    env = gym.wrappers.vector.RecordEpisodeStatistics(env)
    env = gym.wrappers.vector.TransformReward(env, _clip if config.clip_rewards else _as_float)
    return env


def _clip(rewards: np.ndarray) -> np.ndarray:
    """Sign of the reward (as SB3's ``ClipRewardEnv``), as float."""
    return np.sign(rewards).astype(np.float64)


def _as_float(rewards: np.ndarray) -> np.ndarray:
    return rewards.astype(np.float64)
