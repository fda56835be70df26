"""Meta-World v3 (ML1 / ML10 / ML45) as task distributions: Meta-World's own splits, seeding, success,
held-out classes, a tiny meta-train + evaluate + submit, and bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import metaenvs
from agents.hooks import Hook
from metaenvs.cli import main
from metaenvs.errors import (
    ConformanceError,
    IncompatibleAgentError,
    InvalidArgumentError,
    MissingDependencyError,
    RecipeError,
)

metaworld = pytest.importorskip("metaworld")

REACH = "MetaWorld/ML1-reach-v3"
TINY = "TestOnly/MetaWorldTinyReach-v3"


@pytest.fixture(scope="module")
def reach():
    return metaenvs.make(REACH)


@pytest.fixture(scope="module")
def ml10():
    return metaenvs.make("MetaWorld/ML10-v3")


def _goals_of(env_cls, mw_tasks):
    """Goals read straight from Meta-World (an env of the class after its own set_task)."""
    env = env_cls()
    out = []
    for t in mw_tasks:
        env.set_task(t)
        out.append(list(env._last_rand_vec))
    env.close()
    return out


def test_every_ml1_env_is_registered_and_the_list_is_metaworlds():
    from metaenvs.metaworld.names import ML1_ENVS

    assert list(ML1_ENVS) == sorted(metaworld.ML1.ENV_NAMES)
    for env in ML1_ENVS:
        assert f"MetaWorld/ML1-{env}" in metaenvs.registry
    assert "MetaWorld/ML10-v3" in metaenvs.registry and "MetaWorld/ML45-v3" in metaenvs.registry


def test_ml1_splits_are_metaworlds_train_and_test_goals(reach):
    bench = metaworld.ML1("reach-v3", seed=0)  # built here, independently of the suite's copy
    cls = bench.train_classes["reach-v3"]
    train, test = reach.tasks("train"), reach.tasks("test")
    assert len(train) == 50 and len(test) == 10
    assert [t.params["rand_vec"] for t in train] == _goals_of(cls, bench.train_tasks)
    assert [t.params["rand_vec"] for t in test] == _goals_of(cls, bench.test_tasks[:10])
    assert not {json.dumps(t.params["rand_vec"]) for t in train} & {
        json.dumps(t.params["rand_vec"]) for t in test
    }


def test_ml10_holds_out_metaworlds_test_classes(ml10):
    from metaworld.env_dict import ML10_V3

    assert ml10.classes == {"train": list(ML10_V3["train"]), "test": list(ML10_V3["test"])}
    train_classes = {t.params["class"] for t in ml10.tasks("train")}
    test_classes = {t.params["class"] for t in ml10.tasks("test")}
    assert train_classes == set(ML10_V3["train"]) and test_classes == set(ML10_V3["test"])
    assert len(ml10.tasks("train")) == 500 and len(ml10.tasks("test")) == 10  # 2 goals per held-out class
    assert [t.id for t in ml10.tasks("test")[:2]] == ["test/drawer-open-v3-00", "test/drawer-open-v3-01"]


def test_protocol_is_data(reach):
    protocol = reach.protocol
    assert protocol.name == "cpu" and protocol.metric == "success_rate" and protocol.higher_is_better
    assert protocol.budget == 10_000 and protocol.budget_unit == "timesteps"
    assert protocol.seeds == (0, 1, 2, 3, 4) and protocol.min_seeds == 5
    assert protocol.env["metaworld"] == "3.1.1" and protocol.env["max_path_length"] == 500
    assert protocol.agent["algo"] == "ppo" and protocol.agent["eval_episodes"] == 3
    full = metaenvs.make(REACH, scale="full")
    assert full.protocol.name == "full" and len(full.tasks("test")) == 50 and full.protocol.budget == 50_000


def test_recorded_split_hashes_hold_and_a_changed_metaworld_fails_conformance(reach, monkeypatch):
    from metaenvs.metaworld import distribution
    from metaenvs.testing import check_task_distribution

    recorded, origin = reach.recorded_split_hash()
    assert recorded == reach.split_hash() and "Meta-World 3.1.1" in origin
    assert metaenvs.make(REACH, seed=1).recorded_split_hash() is None  # recorded for seed 0 only

    real = distribution.goal_vectors

    def shifted(env_cls, mw_tasks):  # a Meta-World whose sampler moved one goal by 1e-9
        goals = real(env_cls, mw_tasks)
        goals[0][0] += 1e-9
        return goals

    monkeypatch.setattr(distribution, "goal_vectors", shifted)
    changed = metaenvs.make(REACH)
    with pytest.raises(ConformanceError, match=r"recorded with Meta-World 3\.1\.1"):
        check_task_distribution(changed)


def test_same_seed_gives_bitwise_identical_observations_rewards_and_success(reach):
    task = reach.tasks("test")[3]

    def trace(seed):
        env = task.make_env()
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(11)
        out = [obs.tobytes()]
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            out.append((obs.tobytes(), reward, terminated, truncated, info["success"], info["is_success"]))
        env.close()
        return out

    assert trace(5) == trace(5)
    envs_a, envs_b = task.make_vector_env(2), task.make_vector_env(2, asynchronous=True)
    obs_a, _ = envs_a.reset(seed=3)
    obs_b, _ = envs_b.reset(seed=3)
    assert obs_a.tobytes() == obs_b.tobytes()  # sync and async (worker processes) agree
    for _ in range(50):
        action = np.full((2, 4), 0.3, dtype=np.float32)
        assert envs_a.step(action)[0].tobytes() == envs_b.step(action)[0].tobytes()
    envs_a.close()
    envs_b.close()


def told(env, obs):
    """``obs`` with the hidden goal written in, as Meta-World's scripted policies read it."""
    obs = np.array(obs, dtype=np.float64)
    obs[36:39] = env.unwrapped.env._target_pos
    return obs


class Scripted:
    """Meta-World's scripted policy, told the goal, as an SB3-style predictor (for evaluate_policy)."""

    def __init__(self, policy, vec) -> None:
        self.policy, self.vec = policy, vec

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        actions = [self.policy.get_action(told(env, o)) for env, o in zip(self.vec.envs, obs, strict=True)]
        return np.stack(actions), None


@pytest.mark.parametrize(
    ("dist_id", "policy_name"),
    [(REACH, "SawyerReachV3Policy"), ("MetaWorld/ML1-push-v3", "SawyerPushV3Policy")],
)
def test_success_is_metaworlds_any_step_rule_and_a_scripted_policy_succeeds(dist_id, policy_name):
    from metaworld import policies
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.sb3_hooks import SuccessRecorder

    dist = metaenvs.make(dist_id)
    policy = getattr(policies, policy_name)()
    for task in dist.tasks("test")[:3]:
        env = task.make_env()
        obs, info = env.reset(seed=0)
        assert info["is_success"] is False
        seen, steps, truncated = False, 0, False
        while not truncated:  # the ML tasks hide the goal (obs[36:39] = 0); the oracle is told it
            obs, _, terminated, truncated, info = env.step(policy.get_action(told(env, obs)))
            seen, steps = seen or info["success"], steps + 1
            assert info["is_success"] == seen and not terminated
        assert steps == 500 and seen
        env.close()
        recorder = SuccessRecorder()
        vec = DummyVecEnv([task.make_env])
        evaluate_policy(Scripted(policy, vec), vec, n_eval_episodes=2, callback=recorder, warn=False)
        assert recorder.rate(2) == 1.0
        idle = SuccessRecorder()  # a policy that never moves never reaches a goal
        evaluate_policy(
            Scripted(type("Idle", (), {"get_action": lambda _, o: np.zeros(4)})(), vec), vec, 1, callback=idle
        )
        assert idle.rate(1) == 0.0


class SeenTasks(Hook):
    def __init__(self) -> None:
        self.tasks = []

    def on_task_start(self, ctx) -> None:
        self.tasks.append(ctx.task)


def test_held_out_classes_never_reach_meta_training(ml10):
    from agents import make_agent
    from baselines import Reptile, meta_train

    agent = make_agent(
        ml10, seed=0, n_envs=1, algo_kwargs={**ml10.protocol.agent["algo_kwargs"], "batch_size": 250}
    )
    seen = SeenTasks()
    original = agent.learn
    agent.learn = lambda task, steps, hooks=(), seed=0: original(task, steps, [*hooks, seen], seed)
    result = meta_train(
        agent, ml10, Reptile(), meta_steps=2, meta_batch_size=3, inner_steps=500, progress=False
    )
    assert len(seen.tasks) == 6 and all(t.split == "train" for t in seen.tasks)
    held_out = set(ml10.classes["test"])
    assert not {t.params["class"] for t in seen.tasks} & held_out
    assert all(np.isfinite(v.numpy()).all() for v in result.init.values())


def test_tiny_meta_train_evaluate_and_submit_end_to_end(tmp_path, capsys):
    metaenvs.register(
        TINY,
        "metaenvs.metaworld.distribution:MetaWorldML",
        kwargs={"benchmark": "ML1", "env_name": "reach-v3", "test_tasks_per_class": 1, "budget": 2000},
    )
    try:
        argv = ["train", "--dist", TINY, "--algo", "reptile", "--meta-steps", "1", "--meta-batch", "2"]
        assert main([*argv, "--inner-steps", "2000", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
        init = tmp_path / "run" / "init.safetensors"
        out = tmp_path / "result.json"
        argv = ["evaluate", "--dist", TINY, "--init", str(init), "--out", str(out), "--no-progress"]
        assert main(argv) == 0
        result = json.loads(out.read_text())
        assert result["protocol"]["metric"] == "success_rate" and len(result["records"]) == 5
        for record in result["records"]:
            assert record["final"] in (0.0, 1 / 3, 2 / 3, 1.0) and "return" in record["scores"]
            assert len(record["curve"]["successes"]) == len(record["curve"]["values"]) == 4  # 2000 / 500
        board = tmp_path / "board"
        capsys.readouterr()
        assert main(["submit", str(out), "--board", str(board), "--init", str(init)]) == 0
        entry = capsys.readouterr().out.split()[1]
        assert (
            main(["board", "verify", entry, "--board", str(board), "--no-progress"]) == 0
        )  # re-run: same bits
        assert "verified" in capsys.readouterr().out.lower()
    finally:
        metaenvs.registry.pop(TINY, None)


def test_bad_input_is_named(reach, monkeypatch):
    with pytest.raises(InvalidArgumentError, match="reach-v3") as info:
        metaenvs.make(REACH, env_name="reach-v9")
    assert "push-v3" in str(info.value) and "reach-v9" in str(info.value)
    with pytest.raises(InvalidArgumentError, match="for ML1 only"):
        metaenvs.make("MetaWorld/ML10-v3", env_name="reach-v3")
    with pytest.raises(InvalidArgumentError, match="at most 50"):
        metaenvs.make(REACH, test_tasks_per_class=51)
    with pytest.raises(InvalidArgumentError, match="scale"):
        metaenvs.make(REACH, scale="huge")
    env = reach.tasks("test")[0].make_env()
    env.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match=r"shape \(4,\), got \(3,\)"):
        env.step(np.zeros(3))
    env.close()
    monkeypatch.setitem(sys.modules, "metaworld", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'metaenvs\[metaworld\]'"):
        metaenvs.make(REACH)


def test_an_initialization_for_other_spaces_is_refused_naming_both_shapes(reach):
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    cartpole = make_agent(metaenvs.make("Control/CartPolePhysics-v0"), seed=0)
    foreign = {k: v.detach().clone() for k, v in cartpole.model.named_parameters()}
    agent = make_agent(reach, seed=0)
    with pytest.raises(IncompatibleAgentError, match=r"observations of shape \(4,\).*shape \(39,\)"):
        evaluate(agent, reach, init=foreign)
    pendulum = make_agent(metaenvs.make("Control/PendulumPhysics-v0"), seed=0)  # 3 observations, 1 action
    head = {"action_net.weight": pendulum.model.action_net.weight.detach().clone()}
    with pytest.raises(IncompatibleAgentError, match=r"actions of shape \(1,\).*shape \(4,\)"):
        agent.set_parameters(head)


def test_rl2_carries_its_hidden_state_across_a_trial_and_is_recorded_as_custom(tmp_path):
    from agents.rl2 import RL2, TrialEnv
    from metaenvs.evaluation import evaluate

    metaenvs.register(
        TINY,
        "metaenvs.metaworld.distribution:MetaWorldML",
        kwargs={"benchmark": "ML1", "env_name": "reach-v3", "test_tasks_per_class": 1, "budget": 500},
    )
    try:
        dist = metaenvs.make(TINY)
        task = dist.tasks("test")[0]
        trial = TrialEnv(lambda _rng: task, episodes=2)
        obs, _ = trial.reset(seed=0)
        assert obs.shape == (39 + 4 + 2,) and obs[-2:].tolist() == [0.0, 0.0]
        ends = []
        for t in range(1000):
            obs, reward, terminated, truncated, info = trial.step(np.full(4, 0.5, dtype=np.float32))
            assert obs[-2] == pytest.approx(reward / 10, rel=1e-6) and not terminated
            if "episode" in info:  # an episode of the task ended inside the trial
                ends.append((t, truncated, obs[-1]))
        assert ends == [(499, False, 1.0), (999, True, 1.0)]  # one Gymnasium episode = the whole trial
        trial.close()

        agent = RL2.for_protocol(
            dist, seed=0, n_envs=2, algo_kwargs={"n_steps": 250, "batch_size": 250, "n_epochs": 2}
        )
        assert agent.episodes_per_trial == 1 + 3  # the budget's episode, then the 3 scored ones
        before = {k: v.clone() for k, v in agent.model.state_dict().items()}
        history = agent.meta_train(dist, 1000, seed=0)
        assert history.values and any(
            not torch_equal(before[k], v) for k, v in agent.model.state_dict().items()
        )
        with pytest.raises(InvalidArgumentError, match="train split"):
            agent.meta_train(dist, 500, split="test")
        with pytest.raises(IncompatibleAgentError, match="hidden state"):
            agent.learn(task, 500, hooks=[Hook()])
        with pytest.raises(InvalidArgumentError, match="pass the curve"):
            agent.evaluate(task)
        curve = agent.learn(task, 500, seed=2)
        went_on = agent.evaluate(task, seed=2, curve=curve)  # the trial learn() left open
        replayed = agent.evaluate(task, seed=2, curve=curve)  # replayed from the seed
        assert went_on == replayed and len(curve.successes) == 1
        init = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
        with pytest.raises(RecipeError, match="custom=True"):
            evaluate(agent, dist, init=init)
        one_seed = dist.protocol.customised(seeds=(3,))  # the default run affords one seed, twice
        first = evaluate(agent, dist, init=init, protocol=one_seed, custom=True)
        again = evaluate(agent, dist, init=init, protocol=one_seed, custom=True)
        assert first.protocol["name"] == "custom" and first.protocol["budget"] == 500
        assert [r["scores"] for r in first.records] == [
            r["scores"] for r in again.records
        ]  # bitwise, from seeds
        assert all(0.0 <= r["final"] <= 1.0 for r in first.records)
    finally:
        metaenvs.registry.pop(TINY, None)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
