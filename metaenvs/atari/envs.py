"""Atari envs under the protocol of Machado et al. (2018), built from Gymnasium's own wrappers.

:class:`AtariConfig` is the protocol as data. Its defaults are Machado et al.'s
recommendations: sticky actions with probability 0.25 (no no-op starts), the end of the
game ends an episode while the loss of a life does not, and an episode is cut at
108,000 emulator frames (30 minutes). The agent sees 84x84 grey frames (the ALE's own
grey palette), max-pooled over the last two of 4 skipped frames, resized with INTER_AREA
and stacked 4 deep with zeros before the first frame: the observation of SB3's Atari
stack. (SB3's ``MaxAndSkipEnv`` max-pools RGB frames before ``WarpFrame`` converts them
to grey; grey-then-max differs from it only where the two pooled frames differ.) The
native vector env of :mod:`metaenvs.atari.vector` gives the same observations.
Rewards may be clipped to their sign for training; episode returns are always recorded
**before** clipping (``info["episode"]["r"]`` is the raw game score).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np

from metaenvs.errors import InvalidArgumentError, require

MACHADO_2018 = "machado2018"
ATARI_100K = "atari100k"


@dataclass(frozen=True)
class AtariConfig:
    """How an Atari game is turned into an env (the evaluation protocol's env half).

    Attributes:
        sticky_action_prob: Probability that the emulator repeats the previous action each frame.
        frame_skip: Emulator frames per agent step.
        max_episode_frames: Emulator frames after which an episode is truncated.
        terminal_on_life_loss: End the episode when a life is lost (Machado: no).
        noop_max: Random no-ops at reset (Machado: none; sticky actions supply the randomness).
        full_action_space: Use all 18 actions instead of the game's minimal set.
        screen_size: Side of the square grey observation.
        frame_stack: Frames stacked in an observation.
        clip_rewards: Train on the sign of the reward (scores are reported raw regardless).
    """

    sticky_action_prob: float = 0.25
    frame_skip: int = 4
    max_episode_frames: int = 108_000
    terminal_on_life_loss: bool = False
    noop_max: int = 0
    full_action_space: bool = False
    screen_size: int = 84
    frame_stack: int = 4
    clip_rewards: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AtariConfig:
        """Build a config from overrides, naming any unknown field."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(f"Unknown Atari config field(s) {unknown}; known: {sorted(known)}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def deviations(self) -> dict[str, tuple[Any, Any]]:
        """Fields that differ from Machado et al. (2018): ``name -> (value, standard)``.

        Reward clipping is a training choice and never a deviation (scores are raw).
        """
        standard = AtariConfig()
        return {
            f.name: (getattr(self, f.name), getattr(standard, f.name))
            for f in fields(self)
            if f.name != "clip_rewards" and getattr(self, f.name) != getattr(standard, f.name)
        }


def make_atari_env(game: str, config: AtariConfig, render_mode: str | None = None) -> gym.Env:
    """One Atari game as a Gymnasium env under ``config``.

    Args:
        game: ALE ROM id (``"breakout"``).
        config: The env half of the protocol.
        render_mode: Passed to the ALE env.

    Returns:
        An env with ``(frame_stack, screen_size, screen_size)`` uint8 observations whose
        ``info["episode"]`` carries the raw (unclipped) return and length at episode end.
    """
    from metaenvs.atari.games import gym_id

    gym.register_envs(require("ale_py", "atari"))
    require("cv2", "atari")  # AtariPreprocessing resizes with OpenCV
    env = gym.make(
        gym_id(game),
        frameskip=1,
        repeat_action_probability=config.sticky_action_prob,
        full_action_space=config.full_action_space,
        max_num_frames_per_episode=config.max_episode_frames,
        render_mode=render_mode,
    )
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=config.noop_max,
        frame_skip=config.frame_skip,
        screen_size=config.screen_size,
        terminal_on_life_loss=config.terminal_on_life_loss,
        grayscale_obs=True,
    )
    env = gym.wrappers.FrameStackObservation(env, config.frame_stack, padding_type="zero")  # as SB3, ALE
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if config.clip_rewards:
        env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))  # as SB3's ClipRewardEnv
    return env
