"""Exactness of the first-order meta-learners against hand computation (float64, linear regression)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import agents
from agents import SupervisedAgent
from agents.hooks import Hook
from baselines import CTS, FOMAML, FOMAMLPlusPlus, Leap, MultiTask, Reptile, meta_train
from baselines.lockstep import Lockstep
from metaenvs.errors import IncompatibleAgentError

LR = 0.05


def linear_agent(seed=0, optimizer="sgd"):
    model = nn.Linear(1, 1).double()
    with torch.no_grad():
        model.weight.fill_(0.3 + 0.1 * seed)
        model.bias.fill_(-0.2)
    return SupervisedAgent((1,), 1, model=model, lr=LR, optimizer=optimizer, dtype=torch.float64)


def by_hand(w, b, x, y):
    """Loss and gradient of mean((w x + b - y)^2), written out."""
    r = w * x + b - y
    return float(np.mean(r**2)), np.array([2 * np.mean(r * x), 2 * np.mean(r)])


def hand_trajectory(task, steps, w=0.3, b=-0.2):
    data = task.load().to(torch.float64)
    x, y = data.x_train.numpy().ravel(), data.y_train.numpy().ravel()
    theta, out = np.array([w, b]), []
    for _ in range(steps + 1):
        loss, grad = by_hand(theta[0], theta[1], x, y)
        out.append((theta.copy(), loss, grad))
        theta = theta - LR * grad
    return out


def hand_leap(traj, steps, norm, stabilizer, loss_term):
    total = np.zeros(2)
    for i in range(steps - 1):  # K inner steps give K - 1 increments
        (t0, l0, g0), (t1, l1, _) = traj[i], traj[i + 1]
        dl = l1 - l0
        if stabilizer:
            dl = -abs(dl)
        if not loss_term:
            dl = 0.0
        inc = (t0 - t1) - dl * g0
        if norm:
            inc = inc / np.sqrt(dl**2 + np.sum((t1 - t0) ** 2))
        total += inc
    return total


def as_vector(grads):
    return np.array([float(grads["weight"].detach().reshape(())), float(grads["bias"].detach().reshape(()))])


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("stabilizer", [True, False])
@pytest.mark.parametrize("loss_term", [True, False])
@pytest.mark.parametrize("steps", [3, 5])
def test_leap_increment_matches_hand_computation(sinusoid, norm, stabilizer, loss_term, steps):
    tasks = sinusoid.tasks("test")[:2]
    agent = linear_agent()
    leap = Leap(norm=norm, stabilizer=stabilizer, loss_in_distance=loss_term)
    leap.initialize(agent)
    for task in tasks:
        agent.learn(task, steps, hooks=[leap])
    expected = (
        sum(hand_leap(hand_trajectory(t, steps), steps, norm, stabilizer, loss_term) for t in tasks) / 2
    )
    np.testing.assert_allclose(as_vector(leap.meta_gradient()), expected, rtol=1e-12, atol=1e-14)


def test_fomaml_matches_hand_computation(sinusoid):
    tasks = sinusoid.tasks("test")[:3]
    agent = linear_agent()
    fomaml = FOMAML()
    fomaml.initialize(agent)
    expected = np.zeros(2)
    for task in tasks:
        agent.learn(task, 4, hooks=[fomaml])
        theta = hand_trajectory(task, 4)[-1][0]
        data = task.load().to(torch.float64)
        expected += (
            by_hand(theta[0], theta[1], data.x_test.numpy().ravel(), data.y_test.numpy().ravel())[1] / 3
        )
    np.testing.assert_allclose(as_vector(fomaml.meta_gradient()), expected, rtol=1e-12)


def test_fomamlpp_weights_and_gradient(sinusoid):
    task = sinusoid.tasks("test")[0]
    agent = linear_agent()
    learner = FOMAMLPlusPlus(msl_anneal_steps=10)
    learner.initialize(agent)
    weights = learner.step_weights(3).numpy()
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3])
    agent.learn(task, 3, hooks=[learner])
    data = task.load().to(torch.float64)
    xq, yq = data.x_test.numpy().ravel(), data.y_test.numpy().ravel()
    traj = hand_trajectory(task, 3)
    expected = sum(
        w * by_hand(traj[i + 1][0][0], traj[i + 1][0][1], xq, yq)[1] for i, w in enumerate(weights)
    )
    np.testing.assert_allclose(as_vector(learner.meta_gradient()), expected, rtol=1e-12)
    learner.meta_step = 10
    assert learner.step_weights(3).numpy()[-1] == pytest.approx(1 - 2 * 0.01)


def test_reptile_one_step_is_sgd_step_by_hand(sinusoid):
    task = sinusoid.tasks("test")[0]
    agent = linear_agent()
    reptile = Reptile(meta_lr=1.0, schedule="constant")
    reptile.initialize(agent)
    agent.learn(task, 1, hooks=[reptile])
    reptile.meta_update()
    expected = hand_trajectory(task, 1)[1][0]
    np.testing.assert_allclose(as_vector(reptile.initialization()), expected, rtol=1e-14)


class Record(Hook):
    def __init__(self):
        self.events, self.final = [], {}

    def on_task_start(self, ctx):
        self.events.append("start")

    def on_inner_step(self, ctx):
        self.events.append("inner")

    def on_step_end(self, ctx):
        self.events.append("end_step")

    def on_task_end(self, ctx):
        self.events.append("end")
        self.final[ctx.task.id] = as_vector({k: v.detach() for k, v in ctx.params.items()})


def run_cts_by_hand(tasks, steps, beta):
    phi = np.array([0.3, -0.2])
    thetas = [phi.copy() for _ in tasks]
    data = [t.load().to(torch.float64) for t in tasks]
    for _ in range(steps):
        for i, d in enumerate(data):
            thetas[i] = (
                thetas[i] - LR * by_hand(*thetas[i], d.x_train.numpy().ravel(), d.y_train.numpy().ravel())[1]
            )
        new_phi = phi - beta * (phi - np.mean(thetas, axis=0))
        thetas = [t + (new_phi - phi) for t in thetas]
        phi = new_phi
    return phi, thetas


def cts_lockstep(tasks, steps, beta):
    agent = linear_agent()
    cts = CTS(meta_lr=beta)
    cts.initialize(agent)
    cts.begin_meta_batch(len(tasks))
    record = Record()
    runner = Lockstep(len(tasks))
    replicas = [copy.deepcopy(agent) for _ in tasks]
    runner.run(
        [
            lambda r=r, t=t: r.learn(t, steps, hooks=[cts, record, runner])
            for r, t in zip(replicas, tasks, strict=True)
        ]
    )
    return cts, record


def test_cts_shift_equals_the_meta_update_by_hand(sinusoid):
    tasks = sinusoid.tasks("test")[:2]
    cts, record = cts_lockstep(tasks, 3, beta=0.4)
    phi, thetas = run_cts_by_hand(tasks, 3, beta=0.4)
    np.testing.assert_allclose(as_vector(cts.initialization()), phi, rtol=1e-13)
    for task, theta in zip(tasks, thetas, strict=True):
        np.testing.assert_allclose(record.final[task.id], theta, rtol=1e-13)


def test_cts_with_zero_meta_step_is_independent_training(sinusoid):
    tasks = sinusoid.tasks("test")[:3]
    _, record = cts_lockstep(tasks, 4, beta=0.0)
    for task in tasks:
        alone = linear_agent()
        alone.learn(task, 4)
        assert np.array_equal(record.final[task.id], as_vector(dict(alone.model.named_parameters())))


def test_cts_accurate_measures_growing_epsilon(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, optimizer="momentum", dtype=torch.float64)
    cts = CTS(meta_lr=0.2, accurate=True)
    meta_train(agent, sinusoid, cts, meta_steps=1, meta_batch_size=2, inner_steps=6, progress=False)
    eps = cts.epsilon[0]
    assert len(eps) == 6 and all(e >= 0 for e in eps) and eps[-1] > eps[0]


def test_cts_accurate_refuses_rl_agents(cartpole):
    agent = agents.make_agent(cartpole, n_envs=1)
    with pytest.raises(IncompatibleAgentError, match="accurate=False"):
        CTS(accurate=True).initialize(agent)


def test_event_order(sinusoid):
    agent = linear_agent()
    record = Record()
    leap = Leap()
    leap.initialize(agent)
    agent.learn(sinusoid.tasks("test")[0], 3, hooks=[leap, record])
    assert record.events == ["start"] + ["inner", "end_step"] * 3 + ["end"]


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
@pytest.mark.parametrize("cls", [Leap, Reptile])
def test_leap_and_reptile_on_actor_critic(cartpole, algo, cls):
    kwargs = {"n_steps": 16, "batch_size": 32, "n_epochs": 1} if algo == "ppo" else {"n_steps": 5}
    agent = agents.make_agent(cartpole, algo=algo, n_envs=2, algo_kwargs=kwargs)
    learner = cls()
    learner.initialize(agent)
    for task in cartpole.tasks("test")[:2]:
        agent.learn(task, 300, hooks=[learner])
    grads = learner.meta_gradient()
    norm = float(torch.sqrt(sum((g**2).sum() for g in grads.values())))
    assert np.isfinite(norm) and norm > 0


def test_multitask_keeps_heads_and_learns_only_the_body(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    mtl = MultiTask()
    result = meta_train(agent, sinusoid, mtl, meta_steps=2, meta_batch_size=2, inner_steps=3, progress=False)
    assert set(result.init) == {"1.weight", "1.bias", "3.weight", "3.bias"}
    assert mtl.head_names == ["5.weight", "5.bias"] and len(mtl.heads) == 4


@pytest.mark.parametrize("algo", ["leap", "fomaml", "fomamlpp", "cts", "mtl"])
def test_meta_step_zero_leaves_init_unchanged(sinusoid, algo):
    from baselines import make_meta_learner

    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    learner = make_meta_learner(algo, meta_lr=0.0)
    result = meta_train(
        agent, sinusoid, learner, meta_steps=2, meta_batch_size=2, inner_steps=3, progress=False
    )
    for k, v in result.init.items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("algo", ["leap", "fomaml", "cts", "mtl"])
def test_first_order_learners_are_deterministic(sinusoid, algo):
    from baselines import make_meta_learner

    def run():
        agent = SupervisedAgent.for_distribution(sinusoid, seed=0, batch_size=4)
        return meta_train(
            agent,
            sinusoid,
            make_meta_learner(algo),
            meta_steps=2,
            meta_batch_size=2,
            inner_steps=3,
            progress=False,
            seed=1,
        ).init

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)
