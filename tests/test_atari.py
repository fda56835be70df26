"""Atari games as tasks: game lists, reference scores, the Machado et al. protocol, raw scores."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metaenvs
from metaenvs.atari import AtariConfig, AtariGames, games
from metaenvs.errors import InvalidArgumentError

pytest.importorskip("ale_py")


def minimal_actions(game: str) -> int:
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    return len(ale.getMinimalActionSet())


def test_pool_games_have_at_most_10_actions_and_the_large_list_more():
    assert len(games.LEAP_POOL) == 47 and set(games.HELD_OUT) <= set(games.LEAP_POOL)
    assert all(minimal_actions(g) <= games.MAX_POOL_ACTIONS for g in games.LEAP_POOL)
    assert all(minimal_actions(g) > games.MAX_POOL_ACTIONS for g in games.LARGE_ACTION_SETS)
    assert set(games.SEEN_IN_PRETRAINING) <= set(games.LEAP_POOL) - set(games.HELD_OUT)


@pytest.mark.slow
def test_pool_is_rederived_from_every_rom():
    import ale_py

    code = "import sys, ale_py; a = ale_py.ALEInterface(); a.setLoggerMode(ale_py.LoggerMode.Error); "
    code += "a.loadROM(ale_py.roms.get_rom_path(sys.argv[1])); print(len(a.getMinimalActionSet()))"
    pool, failed = [], []
    for rom in sorted(ale_py.roms.get_all_rom_ids()):
        run = subprocess.run([sys.executable, "-c", code, rom], capture_output=True, text=True)
        if run.returncode:  # multi-player-only ROMs exit the process
            failed.append(rom)
        elif int(run.stdout.split()[-1]) <= games.MAX_POOL_ACTIONS:
            pool.append(rom)
    assert tuple(pool) == games.LEAP_POOL and tuple(failed) == games.UNLOADABLE_ROMS


def test_human_normalisation_by_hand():
    assert games.human_normalized("breakout", 30.5) == pytest.approx(1.0)
    assert games.human_normalized("breakout", 1.7) == pytest.approx(0.0)
    assert games.human_normalized("breakout", 100.0) == pytest.approx((100.0 - 1.7) / (30.5 - 1.7))
    assert games.human_normalized("pong", -20.7 + 0.5 * (14.6 + 20.7)) == pytest.approx(0.5)
    assert games.human_normalized("skiing", -4336.9) == pytest.approx(1.0)  # negative scores
    assert np.isnan(games.human_normalized("tetris", 10.0)) and not games.has_reference("tetris")
    assert len(games.ATARI_57) == 57


def test_held_out_games_are_not_in_training_splits():
    for id in ("Atari/LeapPool-v0", "Atari/Atari57-v0"):
        dist = metaenvs.make(id)
        train = {t.params["game"] for t in dist.tasks("train")}
        assert {t.params["game"] for t in dist.tasks("test")} == {"breakout", "space_invaders"}
        assert not train & set(games.HELD_OUT)
    with pytest.raises(InvalidArgumentError, match="both held out and used for training"):
        AtariGames(train=["pong", "breakout"], test=["breakout"])
    with pytest.raises(InvalidArgumentError, match="not ALE ROM ids"):
        AtariGames(test=["Breakout"])


def test_env_passes_check_env_and_follows_the_protocol():
    env = metaenvs.make("Atari/LeapPool-v0").tasks("test")[0].make_env()
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    ale = env.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert ale.getInt("max_num_frames_per_episode") == 108_000
    env.close()


def test_non_machado_config_is_refused_unless_marked():
    with pytest.raises(InvalidArgumentError, match=r"sticky_action_prob.*non_standard=True"):
        metaenvs.make("Atari/LeapPool-v0", config={"sticky_action_prob": 0.0})
    marked = metaenvs.make("Atari/LeapPool-v0", config={"sticky_action_prob": 0.0}, non_standard=True)
    assert marked.protocol.name == "machado2018-nonstandard"
    assert metaenvs.make("Atari/LeapPool-v0").protocol.name == "machado2018"
    with pytest.raises(InvalidArgumentError, match="Unknown Atari config"):
        AtariConfig.from_dict({"sticky": 0.1})
    # evaluate() refuses a standard-named protocol whose env config departs from the standard
    dist = metaenvs.make("Atari/LeapPool-v0")
    tampered = replace(dist.protocol, env={**dist.protocol.env, "noop_max": 30})
    with pytest.raises(InvalidArgumentError, match="noop_max"):
        from metaenvs.evaluation import evaluate

        evaluate(object(), dist, None, tampered)


def test_training_rewards_are_clipped_but_scores_are_raw():
    dist = AtariGames(test=["space_invaders"], config={"max_episode_frames": 4000}, non_standard=True)
    env = dist.tasks("test")[0].make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    clipped, info = [], {}
    while "episode" not in info:
        _, reward, _, _, info = env.step(env.action_space.sample())
        clipped.append(reward)
    assert set(clipped) <= {-1.0, 0.0, 1.0}
    assert info["episode"]["r"] > sum(clipped) > 0  # space invaders pays 5-30 points a kill
    env.close()


def test_leap_actor_critic_learns_a_game_with_a_hook_at_every_gradient_step():
    from agents import make_agent
    from agents.hooks import Hook

    dist = metaenvs.make("Atari/LeapPool-v0")
    agent = make_agent(dist, seed=0, n_envs=2)
    encoder = agent.model.features_extractor
    assert [type(m).__name__ for m in encoder.cnn][:3] == ["Conv2d", "ReLU", "Conv2d"]
    assert encoder.cnn[0].out_channels == 16 and encoder.linear[0].out_features == 256
    assert dist.protocol.agent["algo_kwargs"]["rms_prop_eps"] == 1e-4

    class Count(Hook):
        steps = 0

        def on_inner_step(self, ctx):
            Count.steps += 1
            assert ctx.optimizer.__class__.__name__ == "RMSprop" and ctx.optimizer.defaults["alpha"] == 0.99

    agent.learn(dist.tasks("test")[0], steps=80, hooks=[Count()])
    assert Count.steps == 80 // (2 * 5)  # A2C: one gradient step per n_envs x n_steps transitions
