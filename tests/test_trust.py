"""Issue #13, the training and evaluation half: recipes, explicit defaults, loud failures, task
identity, one statistic, clean errors. (The board half is in tests/test_board_*.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import metaenvs
from agents import make_agent
from baselines import Reptile, Scratch, meta_train
from baselines.checkpoint import load_checkpoint
from metaenvs.errors import (
    CheckpointError,
    IncompatibleAgentError,
    InvalidArgumentError,
    NonFiniteError,
    RecipeError,
    WrongDistributionError,
)
from metaenvs.evaluation import evaluate
from metaenvs.io import save_initialization


# ----- item 1: recipes -------------------------------------------------------------------------------
def test_an_agent_off_the_recipe_is_refused_naming_every_differing_field(sinusoid):
    agent = make_agent(sinusoid, seed=0, lr=0.05, optimizer="adam")
    with pytest.raises(RecipeError) as info:
        evaluate(agent, sinusoid, None)
    message = str(info.value)
    assert "lr: the protocol's recipe has 0.02, the run used 0.05" in message
    assert "optimizer: the protocol's recipe has 'sgd', the run used 'adam'" in message
    assert "--custom" in message


def test_a_different_model_is_off_the_recipe_too(sinusoid):
    agent = make_agent(sinusoid, seed=0, model_spec={"type": "mlp", "hidden": [8], "activation": "relu"})
    with pytest.raises(RecipeError, match=r"model_spec\.hidden"):
        evaluate(agent, sinusoid, None, sinusoid.protocol.customised(budget=1))


def test_a_custom_run_records_the_agent_it_used_under_a_custom_protocol(sinusoid):
    agent = make_agent(sinusoid, seed=0, lr=0.05)
    protocol = sinusoid.protocol.customised(budget=2, seeds=(0,))
    result = evaluate(agent, sinusoid, None, protocol, custom=True)
    assert result.protocol["name"] == "custom" and result.protocol["agent"]["lr"] == 0.05
    assert result.protocol_hash != sinusoid.protocol.hash


def test_the_prescribed_agent_passes_and_batched_execution_is_not_part_of_the_recipe(sinusoid):
    protocol = sinusoid.protocol.customised(budget=1, seeds=(0,))
    for agent in (make_agent(sinusoid, seed=0), make_agent(sinusoid, seed=0, batched=True)):
        assert evaluate(agent, sinusoid, None, protocol).protocol["name"] == "custom"


def test_customised_is_the_only_derivation_and_cannot_keep_the_official_name(sinusoid):
    protocol = sinusoid.protocol
    assert not hasattr(protocol, "replace")
    assert protocol.customised(budget=4).name == "custom" and protocol.customised(budget=4).is_custom
    with pytest.raises(InvalidArgumentError, match="do not pass name"):
        protocol.customised(budget=4, name="default")
    with pytest.raises(InvalidArgumentError, match="no field"):
        protocol.customised(budgte=4)


# ----- item 9: explicit defaults are defaults ----------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"split": "test"},
        {"seeds": (0, 1, 2)},
        {"budget": 32},
        {"split": "test", "seeds": [0, 1, 2], "budget": 32},
    ],
)
def test_explicit_values_equal_to_the_protocols_keep_it_official(sinusoid, changes):
    protocol = sinusoid.protocol
    same = protocol.customised(**changes)
    assert same is protocol and same.name == "default" and same.hash == sinusoid.protocol.hash


def test_cli_evaluate_with_the_protocols_own_split_seeds_and_budget_is_official(tmp_path, capsys):
    from metaenvs.cli import main

    out = tmp_path / "r.json"
    argv = ["evaluate", "--dist", "Synthetic/Sinusoid-v0", "--split", "test", "--seeds", "0-2"]
    assert main([*argv, "--budget", "32", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    official = metaenvs.make("Synthetic/Sinusoid-v0").protocol
    assert result["protocol_id"] == official.id and result["protocol_hash"] == official.hash


# ----- item 7: non-finite meta-optimizer state -----------------------------------------------------------
def test_adam_state_that_overflows_is_refused_and_rolled_back(sinusoid):
    agent = make_agent(sinusoid, seed=0)
    learner = Reptile(meta_optimizer="adam", meta_lr=1e-3)
    learner.initialize(agent)
    learner.apply_meta_gradient({k: torch.ones_like(v) for k, v in learner.init.items()})
    init = {k: v.clone() for k, v in learner.init.items()}
    state = json.dumps(str(learner.meta_optimizer.state_dict()))
    huge = {k: torch.full_like(v, 1e25) for k, v in learner.init.items()}  # finite, but 1e50 in exp_avg_sq
    with pytest.raises(NonFiniteError, match="meta-optimizer state"):
        learner.apply_meta_gradient(huge)
    assert all(torch.equal(init[k], learner.init[k]) for k in init)
    assert json.dumps(str(learner.meta_optimizer.state_dict())) == state


def test_a_run_whose_meta_optimizer_state_overflows_saves_nothing_non_finite(sinusoid, tmp_path, monkeypatch):
    agent = make_agent(sinusoid, seed=0)
    learner = Reptile(meta_optimizer="adam", meta_lr=1e-3)
    real = learner.meta_gradient
    calls = {"n": 0}

    def gradient():
        calls["n"] += 1
        grads = real()
        return grads if calls["n"] < 3 else {k: torch.full_like(v, 1e25) for k, v in grads.items()}

    monkeypatch.setattr(learner, "meta_gradient", gradient)
    kwargs = {"meta_batch_size": 2, "inner_steps": 2, "out_dir": tmp_path, "progress": False}
    with pytest.raises(NonFiniteError):
        meta_train(agent, sinusoid, learner, meta_steps=5, checkpoint_every=1, **kwargs)
    tensors, state = load_checkpoint(tmp_path)
    assert state["step"] == 2 and all(bool(torch.isfinite(t).all()) for t in tensors.values())
    assert not (tmp_path / "init.safetensors").exists()


# ----- item 10: silent no-ops are errors ------------------------------------------------------------------
def test_apply_meta_gradient_of_nothing_is_an_error(sinusoid):
    learner = Reptile()
    learner.initialize(make_agent(sinusoid, seed=0))
    with pytest.raises(InvalidArgumentError, match="needs a gradient"):
        learner.apply_meta_gradient(None)
    with pytest.raises(InvalidArgumentError, match="needs a gradient"):
        learner.apply_meta_gradient({"not.a.parameter": torch.zeros(1)})


def test_a_meta_batch_whose_hooks_saw_nothing_is_an_error_but_scratch_may_do_nothing(sinusoid):
    learner = Reptile()
    learner.initialize(make_agent(sinusoid, seed=0))
    with pytest.raises(IncompatibleAgentError, match="no meta-gradient"):
        learner.meta_update()  # as if the agent's learn() had fired no event
    scratch = Scratch()
    scratch.initialize(make_agent(sinusoid, seed=0))
    assert scratch.meta_update()["meta_grad_norm"] == 0.0


def test_the_sb3_agent_raises_when_sb3_recreates_its_optimizer(cartpole, monkeypatch):
    import stable_baselines3
    from stable_baselines3 import A2C

    original = A2C.train

    def train(self):  # an SB3 release that builds a new optimizer inside train()
        optimizer = self.policy.optimizer
        self.policy.optimizer = type(optimizer)(self.policy.parameters(), **optimizer.defaults)
        return original(self)

    monkeypatch.setattr(A2C, "train", train)
    agent = make_agent(cartpole, seed=0, n_envs=2)
    with pytest.raises(IncompatibleAgentError, match=f"SB3 {stable_baselines3.__version__}.*the hooks saw 0"):
        agent.learn(cartpole.tasks("test")[0], 40)


# ----- item 8: a task's record fixes its data ---------------------------------------------------------------
def test_a_ratings_task_of_another_seed_is_refused_naming_both(data_root):
    seed0 = metaenvs.make("Ratings/Jester1_10shot15val-v0", seed=0)
    seed1 = metaenvs.make("Ratings/Jester1_10shot15val-v0", seed=1)
    shared = [t for t in seed1.tasks("train") if t.id in {u.id for u in seed0.tasks("train")}]
    assert shared, "the two seeds share meta-train users"
    with pytest.raises(WrongDistributionError, match=r"seed 0\).*another instance"):
        seed0.check_task(shared[0])
    data = seed0.check_task(seed0.task_from_json(seed0.tasks("test")[0].to_json())).load()
    again = seed0.tasks("test")[0].load()
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_test, again.y_test)


def test_a_task_record_with_edited_params_is_refused(sinusoid):
    record = sinusoid.tasks("test")[0].to_dict()
    record["params"]["amplitude"] = 99.0
    with pytest.raises(WrongDistributionError, match="has params"):
        sinusoid.task_from_dict(record)
    sampled = sinusoid.sample(np.random.default_rng(0), "train", 1)[0].to_dict()
    sampled["params"] = {**sampled["params"], "phase": 0.0}
    with pytest.raises(WrongDistributionError):
        sinusoid.task_from_dict(sampled)


# ----- item 11: one statistic ----------------------------------------------------------------------
def test_evaluate_reports_the_boards_aggregates_by_the_same_code(sinusoid):
    from metaenvs.aggregates import summarize

    result = evaluate(make_agent(sinusoid, seed=0), sinusoid, None, sinusoid.protocol.customised(budget=2))
    summary = result.summary()
    expected = summarize(result.records, metric="mse", higher_is_better=False, resample_tasks=True)
    assert summary["final"] == expected and result.to_dict()["summary"]["final"] == expected
    text = str(summary)
    assert "IQM" in text and "mean" in text and "95% bootstrap CIs" in text and "{" not in text


# ----- items 12 and 15: clean errors ---------------------------------------------------------------
def test_checkpoint_json_with_a_missing_or_outside_tensor_file_is_a_clean_error(sinusoid, tmp_path):
    agent = make_agent(sinusoid, seed=0)
    meta_train(agent, sinusoid, Reptile(), meta_steps=1, meta_batch_size=1, inner_steps=1, out_dir=tmp_path)
    path = tmp_path / "checkpoint.json"
    state = json.loads(path.read_text())
    for bad in ({k: v for k, v in state.items() if k != "tensors"}, {**state, "tensors": "../../etc/passwd"}):
        path.write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=r"lacks|names the tensor file"):
            load_checkpoint(tmp_path)


def test_init_errors_say_what_is_wrong(sinusoid, tmp_path):
    agent = make_agent(sinusoid, seed=0)
    with pytest.raises(CheckpointError, match="No such initialization file"):
        evaluate(agent, sinusoid, tmp_path / "missing.safetensors")
    text_pickle = tmp_path / "pickle.safetensors"
    text_pickle.write_bytes(b"(dp0\nS'weight'\np1\nI1\ns.")
    (tmp_path / "pickle.json").write_text(json.dumps({"sha256": "x"}))
    from metaenvs.io import load_safetensors

    with pytest.raises(CheckpointError, match="text-protocol pickle"):
        load_safetensors(text_pickle)
    (tmp_path / "bad.safetensors").write_bytes(b"12345678{}")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid JSON card"):
        evaluate(agent, sinusoid, tmp_path / "bad.safetensors")


def test_an_init_of_another_distribution_is_refused_naming_it_unless_allowed(sinusoid, tmp_path, capsys):
    agent = make_agent(sinusoid, seed=0)
    tensors = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    path = tmp_path / "init.safetensors"
    save_initialization(path, tensors, {"algorithm": "reptile", "dist_id": "Synthetic/Alpine50shot-v0"})
    with pytest.raises(WrongDistributionError, match="meta-trained on Synthetic/Alpine50shot-v0"):
        evaluate(agent, sinusoid, path)
    protocol = sinusoid.protocol.customised(budget=1, seeds=(0,))
    evaluate(agent, sinusoid, path, protocol, allow_foreign_init=True)
    assert "meta-trained on Synthetic/Alpine50shot-v0" in capsys.readouterr().out


def test_second_order_budgets_that_cannot_fit_in_memory_are_refused_up_front(sinusoid, tmp_path):
    from baselines import AMAML

    agent = make_agent(sinusoid, seed=0)
    with pytest.raises(InvalidArgumentError, match="GiB"):
        meta_train(
            agent, sinusoid, AMAML(), meta_steps=1, meta_batch_size=1, inner_steps=10**9, out_dir=tmp_path
        )
    assert not (tmp_path / "checkpoint.json").exists()


def test_an_output_folder_that_is_a_file_is_refused_before_training(sinusoid, tmp_path):
    out = tmp_path / "afile"
    out.write_text("x")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        meta_train(
            make_agent(sinusoid, seed=0), sinusoid, Reptile(), meta_steps=1, meta_batch_size=1, out_dir=out
        )
    assert out.read_text() == "x"


def test_outputs_get_the_usual_permissions(sinusoid, tmp_path):
    import os

    agent = make_agent(sinusoid, seed=0)
    meta_train(agent, sinusoid, Reptile(), meta_steps=1, meta_batch_size=1, inner_steps=1, out_dir=tmp_path)
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("init.safetensors", "init.json", "log.csv", "checkpoint.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_meta_lr_beyond_float32_is_refused():
    with pytest.raises(InvalidArgumentError, match="float32"):
        Reptile(meta_lr=1e308)


def test_learning_leaves_no_sb3_temp_folder(cartpole, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    agent = make_agent(cartpole, seed=0, n_envs=2)
    agent.learn(cartpole.tasks("test")[0], 40)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("SB3-")] == []
