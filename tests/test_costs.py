"""Costs stated up front and progress inside a meta step (#14)."""

from __future__ import annotations

import json

import metaenvs
from agents import make_agent
from baselines import Reptile, meta_train
from baselines.costs import format_seconds, protocol_budget
from metaenvs.cli import main


def test_info_states_the_protocols_budget_and_a_measured_estimate(capsys):
    assert main(["info", "Synthetic/Sinusoid-v0", "--max-tasks", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["budget"] == {
        "split": "test",
        "tasks": 100,
        "seeds": 3,
        "runs": 300,
        "steps_per_run": 32,
        "unit": "inner_steps",
        "total_steps": 9600,
    }
    assert info["meta_defaults"] == {"leap": {"meta_lr": 0.01}, "imaml": {"reg": 10.0}}
    cost = info["cost_estimate"]
    assert cost["measured_seconds_per_run"] > 0 and cost["estimate"].startswith("about ")
    assert cost["estimated_seconds"] == cost["measured_seconds_per_run"] * 300


def test_atari_budgets_count_frames():
    budget = protocol_budget(metaenvs.make("Atari/LeapPool-v0"))
    assert budget["runs"] == 2 * 3 and budget["frames"] == 6 * 2_500_000 * 4


def test_train_dry_run_prints_settings_and_cost_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--dist",
        "Synthetic/Sinusoid-v0",
        "--algo",
        "leap",
        "--meta-steps",
        "50",
        "--out",
        str(out),
    ]
    assert main([*argv, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "meta-learner {" in text and '"meta_lr": 0.01' in text and '"lr": 0.02' in text
    assert 'Synthetic/Sinusoid-v0\'s own defaults for leap: {"meta_lr": 0.01}' in text
    assert "dry run: 8,000 inner_steps, about" in text and "nothing was trained" in text
    assert not (out / "checkpoint.json").exists()


def test_evaluate_dry_run_and_early_checks(tmp_path, capsys):
    assert main(["evaluate", "--dist", "Synthetic/Sinusoid-v0", "--dry-run"]) == 0
    assert "100 tasks x 3 seeds = 300 runs of 32 inner_steps" in capsys.readouterr().out
    out = tmp_path / "r.json"
    argv = ["evaluate", "--dist", "Synthetic/Sinusoid-v0", "--code-url", "notaurl", "--out", str(out)]
    assert main(argv) == 2
    assert "--code-url 'notaurl'" in capsys.readouterr().err and not out.exists()


def test_progress_shows_inner_steps_within_a_meta_step(sinusoid, capsys):
    agent = make_agent(sinusoid, seed=0)
    meta_train(agent, sinusoid, Reptile(), meta_steps=1, meta_batch_size=2, inner_steps=3, progress=True)
    assert "[inner steps 6/6]" in capsys.readouterr().err


def test_format_seconds():
    assert [format_seconds(s) for s in (5, 600, 7200, 3 * 86400)] == ["5 s", "10 min", "2.0 h", "3.0 days"]


def test_evaluate_tables_show_each_task_and_never_average_raw_scores_of_a_fixed_set(
    tmp_path, capsys, scratch_registry
):
    metaenvs.register(
        "Mine/TwoGames-v0",
        "metaenvs.control:GymEnvList",
        kwargs={"train": ["CartPole-v1"], "test": ["MountainCar-v0", "Acrobot-v1"]},
    )
    argv = ["train", "--dist", "Mine/TwoGames-v0", "--meta-steps", "1", "--meta-batch", "1"]
    assert main([*argv, "--inner-steps", "200", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["evaluate", "--dist", "Mine/TwoGames-v0", "--init", str(tmp_path / "r" / "init.safetensors")]
    assert main([*argv, "--budget", "2000", "--seeds", "0", "--custom", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test/MountainCar-v0" in out and "test/Acrobot-v1" in out  # one row per task
    assert "reptile: raw scores of different tasks in a fixed set are not averaged" in out
    assert "IQM return" not in out
