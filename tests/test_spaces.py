"""Tasks whose spaces differ (#14): adapted per task where one policy can serve them, refused up front
(naming the tasks) where none can."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import pytest
import torch

import metaenvs
from agents import make_agent
from baselines import Reptile, meta_train
from metaenvs.core import RLTaskDistribution
from metaenvs.errors import ConformanceError, IncompatibleAgentError, InvalidArgumentError
from metaenvs.spaces import adaptation_needed
from metaenvs.testing import check_task_distribution

README_EXAMPLE = """
import metaenvs
metaenvs.register(
    "Mine/Control-v0",
    "metaenvs.control:GymEnvList",
    kwargs={"train": ["CartPole-v1", "Acrobot-v1"], "test": ["MountainCar-v0"]},
)
"""


def test_the_readme_example_meta_trains_and_evaluates_through_the_cli(tmp_path):
    (tmp_path / "my_control.py").write_text(README_EXAMPLE)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    dist = "my_control:Mine/Control-v0"

    def cli(*argv):
        return subprocess.run(
            [sys.executable, "-m", "metaenvs.cli", *argv],
            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    train = cli(
        "train", "--dist", dist, "--meta-steps", "2", "--meta-batch", "2", "--inner-steps", "80", "--out", "r"
    )
    assert train.returncode == 0, train.stderr
    # MountainCar's episodes last 200 steps: 8 envs x 250 steps finish some to score
    argv = ["--init", "r/init.safetensors", "--budget", "2000", "--seeds", "0", "--no-progress"]
    ev = cli("evaluate", "--dist", dist, *argv)
    assert ev.returncode == 0, ev.stderr


def test_shared_parameters_leave_out_the_layers_sized_by_the_task():
    dist = metaenvs.make("Control/ClassicControl-v1")
    agent = make_agent(dist, seed=0, n_envs=2)
    assert agent.adapt_input_layer and agent.adapt_action_head
    shared = agent.shared_parameters
    assert "action_net" not in shared and "mlp_extractor.policy_net.0" not in shared
    assert "mlp_extractor.policy_net.2" in shared and "value_net" in shared
    learner = Reptile(params=shared)
    result = meta_train(agent, dist, learner, meta_steps=1, meta_batch_size=2, inner_steps=40, progress=False)
    assert result.init and all(
        not n.startswith(("action_net", "mlp_extractor.policy_net.0.")) for n in result.init
    )
    assert all(bool(torch.isfinite(v).all()) for v in result.init.values())


def test_envs_that_no_policy_can_share_are_refused_when_the_distribution_is_made(scratch_registry):
    metaenvs.register(
        "Mine/Mixed-v0",
        "metaenvs.control:GymEnvList",
        kwargs={"train": ["CartPole-v1"], "test": ["Pendulum-v1"]},
    )
    with pytest.raises(InvalidArgumentError, match=r"train/CartPole-v1 .*test/Pendulum-v1"):
        metaenvs.make("Mine/Mixed-v0")


def test_an_agent_without_the_adaptation_names_the_flag_it_needs():
    dist = metaenvs.make("Control/ClassicControl-v1")
    agent = make_agent(dist, seed=0, n_envs=2, adapt_input_layer=False)
    with pytest.raises(IncompatibleAgentError, match="adapt_input_layer=True"):
        agent.learn(dist.tasks("train")[0], 40)


class _Undeclared(RLTaskDistribution):
    """CartPole and Acrobot as tasks, with a protocol that forgets to adapt."""

    seed_decides_splits = False

    def _split_sizes(self):
        return {"train": 1, "test": 1}

    def _finite_task(self, split, index):
        env_id = "CartPole-v1" if split == "train" else "Acrobot-v1"
        return env_id, {"env_id": env_id}

    def make_env(self, task, render_mode=None):
        return gym.make(task.params["env_id"], render_mode=render_mode)

    def default_protocol(self):
        return self.return_protocol(1000, {"type": "actor_critic", "algo": "a2c", "n_envs": 2})


def test_the_conformance_check_refuses_tasks_whose_spaces_the_recipe_does_not_adapt():
    with pytest.raises(ConformanceError, match=r"train/CartPole-v1.*test/Acrobot-v1.*adapt_input_layer"):
        check_task_distribution(_Undeclared())


def test_the_adaptation_rule():
    box4, box6 = gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (6,))
    d2, d3 = gym.spaces.Discrete(2), gym.spaces.Discrete(3)
    assert adaptation_needed((box4, d2), (box4, d2)) == {}
    assert adaptation_needed((box4, d2), (box6, d3)) == {"adapt_input_layer": True, "adapt_action_head": True}
    with pytest.raises(IncompatibleAgentError, match="action spaces"):
        adaptation_needed((box4, d2), (box4, gym.spaces.Box(-1, 1, (1,))))
    with pytest.raises(IncompatibleAgentError, match="observation spaces"):
        adaptation_needed((box4, d2), (gym.spaces.Box(0, 255, (84, 84)), d2))
