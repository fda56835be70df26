"""Leap across Atari games, tiny: 2 games x 2 meta steps x 2k frames; resume; evaluate held out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metaenvs
from agents.hooks import Hook
from metaenvs.atari import games
from metaenvs.cli import main

pytest.importorskip("ale_py")

FRAMES = 2000
SHORT_ID = "TestOnly/AtariShortEpisodes-v0"
SHORT_KWARGS = {
    "train": ["pong", "freeway"],
    "test": list(games.HELD_OUT),
    "config": {"max_episode_frames": 400},
    "non_standard": True,
}


class SeenGames(Hook):
    """Records every game an agent trains on."""

    def __init__(self) -> None:
        self.games: list[str] = []

    def on_task_start(self, ctx) -> None:
        self.games.append(ctx.task.params["game"])


def run_leap(dist, out_dir: Path, stop_after: int | None = None, seen: SeenGames | None = None):
    from agents import make_agent
    from baselines import Leap, meta_train

    agent = make_agent(dist, seed=0, n_envs=2)
    leap = Leap(norm=False, params=["features_extractor"], meta_lr=0.1)
    if seen is not None:  # spy on the tasks meta-training hands the agent
        original = agent.learn
        agent.learn = lambda task, steps, hooks=(), seed=0: original(task, steps, [*hooks, seen], seed)
    return meta_train(
        agent,
        dist,
        leap,
        meta_steps=2,
        meta_batch_size=2,
        inner_steps=FRAMES // dist.frames_per_step,
        seed=0,
        out_dir=out_dir,
        progress=False,
        max_steps_this_call=stop_after,
    )


def test_leap_across_games_resumes_bitwise_and_its_init_evaluates_on_held_out_games(tmp_path):
    dist = metaenvs.make("Atari/LeapPool-v0")
    seen = SeenGames()
    straight = run_leap(dist, tmp_path / "straight", seen=seen)
    assert len(seen.games) == 4 and not set(seen.games) & set(games.HELD_OUT)
    assert set(straight.init) == {n for n in straight.init if n.startswith("features_extractor.")}
    rows = straight.history
    assert [r["frames"] for r in rows] == [2 * FRAMES, 2 * FRAMES]
    assert all(r["meta_grad_norm"] > 0 for r in rows)

    killed = run_leap(dist, tmp_path / "killed", stop_after=1)  # stops after a checkpoint, as a kill would
    assert killed.init_path is None and len(killed.history) == 1
    resumed = run_leap(dist, tmp_path / "killed")
    assert resumed.resumed_from == 1
    for name, value in straight.init.items():
        assert np.array_equal(value.numpy(), resumed.init[name].numpy()), name

    # Held out through the CLI, on the same games with episodes cut at 400 frames (a registered,
    # marked non-standard variant) so that a tiny budget still finishes episodes to score.
    metaenvs.register(SHORT_ID, "metaenvs.atari:AtariGames", kwargs=SHORT_KWARGS)
    try:
        out = tmp_path / "held_out.json"
        argv = ["evaluate", "--dist", SHORT_ID, "--init", str(straight.init_path), "--split", "test"]
        argv += ["--allow-foreign-init"]  # meta-trained on Atari/LeapPool-v0: a transfer, on purpose
        assert main([*argv, "--budget", "1760", "--seeds", "0", "--out", str(out), "--no-progress"]) == 0
    finally:
        metaenvs.registry.pop(SHORT_ID)
    result = json.loads(out.read_text())
    assert {r["task_id"] for r in result["records"]} == {"test/breakout", "test/space_invaders"}
    card = json.loads(straight.init_path.with_suffix(".json").read_text())
    assert result["init"]["sha256"] == card["sha256"] and result["protocol"]["name"].endswith("nonstandard")
    for record in result["records"]:
        game = record["task_id"].split("/")[1]
        assert record["curve"]["x_unit"] == "timestep" and record["scores"]["episodes"] >= 1
        assert record["normalized_final"] == pytest.approx(games.human_normalized(game, record["final"]))
    assert result["compute"]["frames"] == 2 * 1760 * 4


def test_an_evaluation_budget_too_short_to_finish_an_episode_is_an_error():
    from agents import make_agent
    from metaenvs.errors import InvalidArgumentError

    dist = metaenvs.make("Atari/LeapPool-v0")
    agent = make_agent(dist, seed=0, n_envs=2)
    breakout = dist.tasks("test")[0]
    curve = agent.learn(breakout, 20, seed=0)
    with pytest.raises(InvalidArgumentError, match="No episode of task 'test/breakout' finished"):
        agent.evaluate(breakout, curve=curve)


def test_training_scores_belong_to_the_run_whose_curve_is_given_not_to_hidden_state():
    from agents import make_agent
    from agents.curves import LearningCurve
    from metaenvs.errors import InvalidArgumentError

    dist = metaenvs.make("Atari/LeapPool-v0")
    agent = make_agent(dist, seed=0, n_envs=2)
    breakout = dist.tasks("test")[0]
    with pytest.raises(InvalidArgumentError, match="pass the curve that learn"):
        agent.evaluate(breakout)  # no run given: nothing to score (no hidden "last learn")
    other = LearningCurve("test/spaceinvaders", "timestep", "episode_return", [10.0], [5.0])
    with pytest.raises(InvalidArgumentError, match="curve given is of task 'test/spaceinvaders'"):
        agent.evaluate(breakout, curve=other)
    mine = LearningCurve("test/breakout", "timestep", "episode_return", [10.0, 20.0], [1.0, 3.0])
    assert agent.evaluate(breakout, curve=mine)["return"] == 2.0


def test_metaenvs_train_on_atari_meta_learns_the_shared_encoder(tmp_path):
    from metaenvs.io import load_initialization

    argv = ["train", "--dist", "Atari/LeapPool-v0", "--algo", "reptile", "--meta-steps", "1"]
    argv += ["--meta-batch", "2", "--inner-steps", "80", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    tensors, card = load_initialization(tmp_path / "init.safetensors")
    assert tensors and all(name.startswith("features_extractor.") for name in tensors)
    assert card["hyperparameters"]["params"] == ["features_extractor"]


TINY_100K = "TestOnly/Atari100kTiny-v0"


def test_the_native_agent_meta_trains_evaluates_submits_and_verifies_at_a_tiny_atari100k_tier(tmp_path):
    import leaderboard
    from agents import make_agent
    from agents.native import NativeActorCritic
    from baselines import Leap, meta_train

    kwargs = {**SHORT_KWARGS, "tier": "atari100k", "frames": 6400}  # 1,600 timesteps: 100 per env
    metaenvs.register(TINY_100K, "metaenvs.atari:AtariGames", kwargs=kwargs)
    try:
        dist = metaenvs.make(TINY_100K)
        assert dist.protocol.name == "atari100k-nonstandard" and dist.protocol.budget == 1600
        agent = make_agent(dist, seed=0)
        assert isinstance(agent, NativeActorCritic) and agent.n_envs == 16
        leap = Leap(norm=False, params=["features_extractor"], meta_lr=0.1)
        trained = meta_train(
            agent, dist, leap, meta_steps=2, meta_batch_size=2, inner_steps=160, seed=0,
            out_dir=tmp_path / "leap", progress=False,
        )  # fmt: skip
        assert all(r["meta_grad_norm"] > 0 for r in trained.history)
        out = tmp_path / "eval.json"
        argv = ["evaluate", "--dist", TINY_100K, "--init", str(trained.init_path), "--out", str(out)]
        assert main([*argv, "--no-progress"]) == 0
        result = json.loads(out.read_text())
        assert len(result["records"]) == 2 * 3 and result["protocol"]["name"] == "atari100k-nonstandard"
        assert all(r["scores"]["episodes"] >= 1 for r in result["records"])
        board = tmp_path / "board"
        entry = leaderboard.submit(out, board, init=trained.init_path).entry_id
        assert leaderboard.verify_entry(leaderboard.Board(board), entry)["verified"] is True
    finally:
        metaenvs.registry.pop(TINY_100K)
