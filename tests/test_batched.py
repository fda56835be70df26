"""Batched inner loops (vmap over stacked parameters) against the per-task loop, for every meta-learner."""

import dataclasses

import numpy as np
import pytest
import torch

import metaenvs
from agents import SupervisedAgent
from agents.hooks import Hook
from baselines import CTS, ExactAdjoint, make_meta_learner, meta_train
from baselines.driver import meta_batch, task_seed
from metaenvs.errors import InvalidArgumentError, NonFiniteError

FIRST_ORDER = ["leap", "reptile", "fomaml", "fomamlpp", "mtl", "scratch"]
SECOND_ORDER = {
    "maml": {},
    "maml_momentum": {},
    "maml_adam": {},
    "adjoint": {},
    "imaml": {"cg_steps": 3, "reg": 10.0},
    "amaml": {"step": 0.02},
    "amaml_prox_euler": {"step": 0.02, "prox": 0.5, "solver": "euler"},
    "amaml_early_stopping": {"step": 0.02, "early_stopping": True},
}
STEPS = 4


def agent_pair(dist, **kwargs):
    make = SupervisedAgent.for_distribution
    options = {"seed": 0, "dtype": torch.float64, "batch_size": 4, **kwargs}
    return make(dist, **options), make(dist, **options, batched=True)


def learner(name, **overrides):
    algo = name.split("_")[0] if name.startswith(("maml", "amaml")) else name
    kwargs = {**SECOND_ORDER.get(name, {}), "meta_optimizer": "sgd", **overrides}
    return make_meta_learner(algo, **kwargs)


def one_meta_batch(agent, name, dist, size=3, **overrides):
    """Run one meta-batch through the driver's dispatch; the meta-gradient and the curves."""
    from baselines.driver import _learn_batched

    meta = learner(name, **overrides)
    meta.initialize(agent)
    tasks = meta_batch(dist, 7, 0, size)
    seeds = [task_seed(7, 0, i) for i in range(size)]
    meta.begin_meta_batch(size)
    if agent.capabilities.batched:
        curves = _learn_batched(agent, tasks, STEPS, meta, seeds)
    elif meta.kind == "trajectory":
        curves = [meta.learn_task(agent, t, STEPS, s) for t, s in zip(tasks, seeds, strict=True)]
    else:
        curves = [agent.learn(t, STEPS, hooks=[meta], seed=s) for t, s in zip(tasks, seeds, strict=True)]
    return meta.meta_gradient(), curves


def assert_close(a, b, rtol=1e-9, atol=1e-12):
    assert (a is None) == (b is None)
    if a is None:
        return
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol, msg=k)


AGENT_OPTIMIZER = {"maml_momentum": "momentum", "maml_adam": "adam"}
"""MAML differentiates through the agent's own optimizer: these variants run on agents that use it."""


@pytest.mark.parametrize("name", FIRST_ORDER + list(SECOND_ORDER))
def test_meta_gradient_equals_per_task_loop(sinusoid, name):
    loop, batched = agent_pair(sinusoid, optimizer=AGENT_OPTIMIZER.get(name, "sgd"))
    g_loop, c_loop = one_meta_batch(loop, name, sinusoid)
    g_batched, c_batched = one_meta_batch(batched, name, sinusoid)
    assert_close(g_batched, g_loop)
    for a, b in zip(c_batched, c_loop, strict=True):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-10)
        assert a.steps == b.steps


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("name", ["leap", "reptile", "fomamlpp"])
def test_inner_optimizers_agree(sinusoid, optimizer, name):
    loop, batched = agent_pair(sinusoid, optimizer=optimizer)
    assert_close(one_meta_batch(batched, name, sinusoid)[0], one_meta_batch(loop, name, sinusoid)[0])


@pytest.mark.parametrize("name", ["cts", "leap", "mtl", "maml"])
def test_meta_train_init_equals_per_task_loop(sinusoid, name):
    loop, batched = agent_pair(sinusoid, optimizer="momentum")
    kwargs = {"meta_steps": 2, "meta_batch_size": 3, "inner_steps": STEPS, "seed": 3, "progress": False}
    a = meta_train(loop, sinusoid, learner(name, meta_lr=0.3), **kwargs).init
    b = meta_train(batched, sinusoid, learner(name, meta_lr=0.3), **kwargs).init
    assert_close(b, a)


@pytest.mark.parametrize("name", ["leap", "reptile"])
def test_parameter_subsets_start_other_parameters_from_the_task_seed(sinusoid, name):
    loop, batched = agent_pair(sinusoid)
    kwargs = {"meta_steps": 2, "meta_batch_size": 3, "inner_steps": STEPS, "seed": 3, "progress": False}
    a = meta_train(loop, sinusoid, learner(name, meta_lr=0.3, params=["1"]), **kwargs).init
    b = meta_train(batched, sinusoid, learner(name, meta_lr=0.3, params=["1"]), **kwargs).init
    assert set(a) == {"1.weight", "1.bias"}
    assert_close(b, a)


def test_cts_accurate_runs_task_by_task_on_a_batched_agent(sinusoid):
    _, batched = agent_pair(sinusoid)
    assert not CTS(accurate=True).supports_batched()
    cts = CTS(meta_lr=0.2, accurate=True)
    meta_train(batched, sinusoid, cts, meta_steps=1, meta_batch_size=2, inner_steps=3, progress=False)
    assert len(cts.epsilon[0]) == 3


def test_conv4_with_batch_norm(data_root):
    dist = metaenvs.make("Vision/Omniglot5way1shot-v0")
    spec = {"model_spec": {"type": "conv4", "channels": 4}, "batch_size": None}
    loop, batched = agent_pair(dist, **spec)
    for name in ("leap", "maml"):
        g_loop, _ = one_meta_batch(loop, name, dist, size=2)
        g_batched, _ = one_meta_batch(batched, name, dist, size=2)
        assert_close(g_batched, g_loop, rtol=1e-8, atol=1e-10)


def test_batched_events_reach_plain_hooks_task_by_task(sinusoid):
    class Count(Hook):
        def __init__(self):
            self.events = []

        def on_task_start(self, ctx):
            self.events.append(("start", ctx.task.id))

        def on_inner_step(self, ctx):
            self.events.append(("inner", ctx.step, ctx.task.id))

        def on_task_end(self, ctx):
            self.events.append(("end", ctx.task.id))

    _, batched = agent_pair(sinusoid)
    tasks = sinusoid.tasks("test")[:2]
    hook = Count()
    batched.learn_batch(tasks, 2, hooks=[hook], seeds=[0, 1])
    ids = [t.id for t in tasks]
    inner = [("inner", s, i) for s in range(2) for i in ids]
    assert hook.events == [("start", i) for i in ids] + inner + [("end", i) for i in ids]
    assert batched.capabilities.batched and batched.hyperparameters()["batched"] is True


def test_mixed_shapes_and_nan_are_refused(sinusoid):
    _, batched = agent_pair(sinusoid, lr=1e300)
    tasks = sinusoid.tasks("test")[:2]
    with pytest.raises(NonFiniteError, match="batched meta-batch"):
        batched.learn_batch(tasks, 3, seeds=[0, 1])
    with pytest.raises(InvalidArgumentError, match="2 seeds for 1 tasks"):
        batched.learn_batch(tasks[:1], 3, seeds=[0, 1])
    data = batched.data(tasks[1])
    batched._data_cache[(tasks[1].dist_id, tasks[1].id)] = dataclasses.replace(
        data, x_train=data.x_train[:-1], y_train=data.y_train[:-1]
    )
    with pytest.raises(InvalidArgumentError, match="one shape"):
        batched.learn_batch(tasks, 2)


def test_adjoint_checkpoint_flag_gives_same_batched_gradient(sinusoid):
    _, batched = agent_pair(sinusoid)
    a = one_meta_batch(batched, "adjoint", sinusoid)[0]
    learner_b = ExactAdjoint(checkpoint=True, meta_optimizer="sgd")
    learner_b.initialize(batched)
    tasks = meta_batch(sinusoid, 7, 0, 3)
    learner_b.learn_batch(batched, tasks, STEPS, [task_seed(7, 0, i) for i in range(3)])
    assert_close(learner_b.meta_gradient(), a, rtol=1e-12)


def test_cli_train_batched_gives_the_per_task_init_to_tolerance(tmp_path):
    from metaenvs.cli import main
    from metaenvs.io import load_initialization

    args = ["train", "--dist", "Synthetic/Sinusoid-v0", "--algo", "leap", "--meta-steps", "2"]
    args += ["--meta-batch", "4", "--inner-steps", "3", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "loop")]) == 0
    assert main([*args, "--out", str(tmp_path / "batched"), "--batched"]) == 0
    loop, _ = load_initialization(tmp_path / "loop" / "init.safetensors")
    batched, card = load_initialization(tmp_path / "batched" / "init.safetensors")
    assert card["agent"]["batched"] is True
    assert_close(batched, loop, rtol=1e-5, atol=1e-6)  # float32
