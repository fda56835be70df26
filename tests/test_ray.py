"""The Ray executor against a local Ray instance: same initialization as local, retries, CTS actors."""

import os
import sys
from pathlib import Path

import pytest
import torch

from agents import SupervisedAgent, make_agent
from baselines import CTS, MetaLearner, Reptile, make_meta_learner, meta_train
from baselines.executors import run_local
from metaenvs.errors import InvalidArgumentError, MissingDependencyError, NonFiniteError
from metaenvs.io import load_initialization

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray(data_root):
    """One local Ray instance for the module (2 CPUs, no dashboard); workers inherit METAENVS_DATA."""
    if not ray.is_initialized():
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # CrashOnce travels by value
    yield ray
    ray.shutdown()


def train(agent, dist, learner, executor, **kwargs):
    options = {"meta_steps": 2, "meta_batch_size": 3, "inner_steps": 4, "seed": 1, "progress": False}
    return meta_train(agent, dist, learner, executor=executor, **{**options, **kwargs})


def equal(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("algo", ["leap", "fomamlpp", "maml", "mtl", "cts"])
def test_ray_gives_the_local_initialization_bitwise(local_ray, sinusoid, algo):
    def agent():
        return SupervisedAgent.for_distribution(sinusoid, seed=4, batch_size=4, optimizer="momentum")

    size = 2 if algo == "cts" else 3  # one actor per task
    local = train(agent(), sinusoid, make_meta_learner(algo), "local", meta_batch_size=size).init
    remote = train(agent(), sinusoid, make_meta_learner(algo), "ray", meta_batch_size=size).init
    assert equal(local, remote)


@pytest.mark.parametrize("native", [False, True])
def test_ray_runs_actor_critic_tasks(local_ray, cartpole, native):
    def agent():
        if native:  # the native actor-critic, its vector-env cache not shipped to workers
            from agents.native import NativeActorCritic

            env = cartpole.tasks("test")[0].make_env()
            return NativeActorCritic(
                env.observation_space, env.action_space, n_envs=2, algo_kwargs={"n_steps": 5}
            )
        return make_agent(cartpole, seed=0, n_envs=2, algo_kwargs={"n_steps": 5})

    options = {"inner_steps": 40, "meta_batch_size": 2, "meta_steps": 1}
    local = train(agent(), cartpole, Reptile(), "local", **options).init
    remote = train(agent(), cartpole, Reptile(), "ray", **options).init
    assert equal(local, remote)


def test_ray_runs_cts_lockstep_on_the_native_actor_critic(local_ray, cartpole):
    from agents.native import NativeActorCritic

    def agent():
        env = cartpole.tasks("test")[0].make_env()
        return NativeActorCritic(
            env.observation_space, env.action_space, n_envs=2, algo_kwargs={"n_steps": 5}
        )

    options = {"inner_steps": 40, "meta_batch_size": 2, "meta_steps": 1}
    local = train(agent(), cartpole, make_meta_learner("cts"), "local", **options).init
    remote = train(agent(), cartpole, make_meta_learner("cts"), "ray", **options).init
    assert equal(local, remote)


class CrashOnce(Reptile):
    """Reptile whose worker process dies in the middle of the first task it runs (marker file)."""

    def __init__(self, marker, **kwargs):
        super().__init__(**kwargs)
        self.marker = str(marker)

    def on_inner_step(self, ctx):
        if ctx.step == 2 and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # the worker dies mid-task, as if killed


def test_killed_worker_is_retried_with_the_same_result(local_ray, sinusoid, tmp_path):
    def agent():
        return SupervisedAgent.for_distribution(sinusoid, seed=4, batch_size=4)

    marker = tmp_path / "crashed"
    local = train(agent(), sinusoid, Reptile(), "local").init
    remote = train(agent(), sinusoid, CrashOnce(marker), "ray").init
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker did die
    assert equal(local, remote)


@pytest.mark.slow
def test_killed_cts_actor_is_replayed_with_the_same_result(local_ray, sinusoid, monkeypatch):
    from baselines import ray_executor

    def agent():
        return SupervisedAgent.for_distribution(sinusoid, seed=4, batch_size=4)

    local = train(agent(), sinusoid, CTS(), "local").init
    original = ray_executor.RayExecutor.run_lockstep
    killed = []

    def kill_one_actor_then_run(self, tasks, steps, learner, seeds):
        real_advance = self._advance

        def advance(i, *args):
            if not killed and i == 1 and len(args[-1]) == 2:  # task 1, after two meta-steps
                ray.kill(self._actors[1], no_restart=True)
                killed.append(i)
            return real_advance(i, *args)

        monkeypatch.setattr(self, "_advance", advance)
        return original(self, tasks, steps, learner, seeds)

    monkeypatch.setattr(ray_executor.RayExecutor, "run_lockstep", kill_one_actor_then_run)
    remote = train(agent(), sinusoid, CTS(), "ray").init
    assert killed and equal(local, remote)


class Legacy(MetaLearner):
    """A user's learner from before ``accumulators``: counts tasks in its own attribute."""

    def reset_accumulators(self):
        self.count = 0

    def on_task_end(self, ctx):
        self.count += 1


def test_undeclared_accumulators_run_locally_and_are_refused_on_ray(local_ray, sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid)
    legacy = Legacy()
    legacy.initialize(agent)
    run_local(agent, sinusoid.tasks("test")[:3], 2, legacy, [0, 1, 2])
    assert legacy.count == 3
    with pytest.raises(InvalidArgumentError, match="accumulators ="):
        train(agent, sinusoid, Legacy(), "ray")


def test_a_task_error_on_a_worker_is_raised_as_itself(local_ray, sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, lr=1e300, dtype=torch.float64)
    with pytest.raises(NonFiniteError, match="inner step"):
        train(agent, sinusoid, Reptile(), "ray", meta_steps=1)


def test_missing_ray_says_how_to_install(monkeypatch, sinusoid):
    monkeypatch.setitem(sys.modules, "ray", None)
    agent = SupervisedAgent.for_distribution(sinusoid)
    with pytest.raises(MissingDependencyError, match=r"pip install \"metaenvs\[ray\]\""):
        train(agent, sinusoid, Reptile(), "ray")


def test_cli_train_with_ray_executor(local_ray, tmp_path, capsys):
    from metaenvs.cli import main

    args = ["train", "--dist", "Synthetic/Sinusoid-v0", "--algo", "reptile", "--meta-steps", "2"]
    args += ["--meta-batch", "2", "--inner-steps", "3", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    ray_init, _ = load_initialization(tmp_path / "ray" / "init.safetensors")
    assert equal(ray_init, load_initialization(tmp_path / "local" / "init.safetensors")[0])
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "x"), "--address", "auto"]) != 0
    assert "add --executor ray" in capsys.readouterr().err
