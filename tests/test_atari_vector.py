"""The native Atari fast path: same observations as SB3's stack, SB3's VecEnv contract, raw scores."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import metaenvs
from metaenvs.atari import AtariConfig, AtariGames, games
from metaenvs.atari.vector import emulator_seed, make_atari_vector_env
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError

pytest.importorskip("ale_py")

SHORT = {"max_episode_frames": 2000}  # several resets within a short test


class _GreyAsRGB(gym.ObservationWrapper):
    """Hands SB3's WarpFrame the ALE's grey frame as three equal channels (cv2 maps them back exactly)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (height, width, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.repeat(observation[:, :, None], 3, axis=2)


def sb3_stack(game_id: str, n_envs: int, seed: int, config: AtariConfig):
    """SB3's own Atari wrappers and VecFrameStack, fed the ALE's grey screen."""
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env = make_vec_env(
        game_id,
        n_envs=n_envs,
        seed=seed,
        wrapper_class=lambda e, **kw: AtariWrapper(_GreyAsRGB(e), **kw),
        env_kwargs={
            "obs_type": "grayscale",
            "frameskip": 1,
            "repeat_action_probability": config.sticky_action_prob,
            "full_action_space": False,
            "max_num_frames_per_episode": config.max_episode_frames,
        },
        wrapper_kwargs={"noop_max": 0, "frame_skip": 4, "terminal_on_life_loss": False, "clip_reward": False},
    )
    return VecFrameStack(env, 4)


def agreeing_seed() -> int:
    """A seed whose emulator seeds have the top bit clear for 2 envs (so both paths get the same seed)."""
    seed = 0
    while any(np.int32(np.random.SeedSequence(seed + i).generate_state(2)[1]) < 0 for i in range(2)):
        seed += 1
    return seed


@pytest.mark.parametrize("game", ["freeway", "skiing"])  # games without FIRE: SB3 always fire-resets
def test_adapter_gives_sb3_stack_observations_for_the_same_seed_and_actions(game):
    from agents.vec_env import GymnasiumVecEnv

    seed, n = agreeing_seed(), 2
    config = AtariConfig(**SHORT)
    ours = GymnasiumVecEnv(make_atari_vector_env(game, config, n, num_threads=1))
    ours.seed(seed)
    theirs = sb3_stack(games.gym_id(game), n, seed, config)
    obs, ref = ours.reset(), theirs.reset().transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(obs, ref)
    rng, resets = np.random.default_rng(0), 0
    for _ in range(1100):  # crosses two episode ends (2000 frames each)
        actions = rng.integers(ours.action_space.n, size=n)
        obs, rewards, dones, infos = ours.step(actions)
        ref, ref_rewards, ref_dones, _ = theirs.step(actions)
        np.testing.assert_array_equal(obs, ref.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(dones, ref_dones)
        np.testing.assert_array_equal(rewards, np.sign(ref_rewards))
        resets += int(dones.sum())
        for i in np.flatnonzero(dones):
            assert infos[i]["terminal_observation"].shape == (4, 84, 84)
            assert infos[i]["TimeLimit.truncated"] and infos[i]["episode"]["l"] == 500
    assert resets == 2 * n
    ours.close()
    theirs.close()


def test_native_env_matches_the_single_env_path_and_records_raw_scores():
    dist = AtariGames(test=["space_invaders"], config={"max_episode_frames": 4000}, non_standard=True)
    task = dist.tasks("test")[0]
    seed = agreeing_seed()
    vector = task.make_vector_env(2)
    single = task.make_env()
    obs, _ = vector.reset(seed=seed)
    first, _ = single.reset(seed=seed)
    np.testing.assert_array_equal(obs[0], first)
    rng, clipped, raw = np.random.default_rng(1), [], None
    while raw is None:
        actions = rng.integers(6, size=2)
        obs, rewards, terminated, _, infos = vector.step(actions)
        ref, _, ref_terminated, _, ref_info = single.step(int(actions[0]))
        assert terminated[0] == ref_terminated
        clipped.append(rewards[0])
        if "episode" in infos and infos["_episode"][0]:  # same-step reset: the last frame is final_obs
            np.testing.assert_array_equal(infos["final_obs"][0], ref)
            np.testing.assert_array_equal(obs[0], single.reset()[0])
            raw = infos["episode"]["r"][0]
            assert raw == ref_info["episode"]["r"]
        else:
            np.testing.assert_array_equal(obs[0], ref)
    assert set(clipped) <= {-1.0, 0.0, 1.0} and raw > sum(clipped) > 0
    vector.close()
    single.close()


def test_native_env_is_deterministic_and_seeds_are_non_negative():
    assert all(0 <= emulator_seed(s) < 2**31 for s in range(100))
    runs = []
    for _ in range(2):
        env = make_atari_vector_env("breakout", AtariConfig(), 3)
        obs, _ = env.reset(seed=5)
        for t in range(60):
            obs, *_ = env.step(np.full(3, t % 4))
        runs.append(obs)
        env.close()
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        make_atari_vector_env("breakout", AtariConfig(), 1).reset(seed=-1)


def test_adapter_refuses_next_step_autoreset():
    from agents.vec_env import GymnasiumVecEnv

    env = metaenvs.make("Control/CartPolePhysics-v0").tasks("test")[0].make_vector_env(2)
    with pytest.raises(InvalidArgumentError, match="SAME_STEP"):
        GymnasiumVecEnv(env)


def test_action_heads_adapt_per_game_and_everything_else_carries_over():
    from agents import make_agent
    from agents.hooks import Hook

    class AtStart(Hook):
        def on_task_start(self, ctx):
            self.params = {k: v.detach().clone() for k, v in ctx.model.named_parameters()}

    dist = metaenvs.make("Atari/LeapPool-v0")
    agent = make_agent(dist, seed=0, n_envs=2)
    assert agent.action_space.n == 4  # breakout
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    pong = next(t for t in dist.tasks("train") if t.params["game"] == "pong")
    hook = AtStart()
    agent.learn(pong, steps=20, seed=0, hooks=[hook])
    assert agent.action_space.n == 6 and agent.model.action_net.out_features == 6
    assert hook.params["action_net.weight"].shape == (6, agent.model.action_net.in_features)
    for name, value in hook.params.items():
        if not name.startswith("action_net"):
            assert bool((value == before[name]).all()), name
    fixed = make_agent(dist, seed=0, n_envs=2, adapt_action_head=False)
    with pytest.raises(IncompatibleAgentError, match="adapt_action_head"):
        fixed.learn(pong, steps=20, seed=0)
