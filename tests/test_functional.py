"""The one functional inner loop (agents/functional.py) against independent references, the learner
kinds' shared fresh-start rule, and the execution path chosen once (#15)."""

import copy

import pytest
import torch

from agents import SupervisedAgent
from agents.functional import InnerOptimizer, inner_loop
from baselines import CTS, FOMAML, MAML, Leap, make_meta_learner, meta_train
from baselines.driver import execution_path
from metaenvs.errors import InvalidArgumentError
from metaenvs.metrics import get_loss
from metaenvs.seeding import torch_generator


def reference_learn(agent, task, steps, seed):
    """``steps`` steps of ``torch.optim`` on a copy of the model, minibatches drawn as the agent draws."""
    model = copy.deepcopy(agent.model)
    data = agent.data(task)
    loss = get_loss(data.loss)
    name, lr, momentum = agent.optimizer_name, agent.lr, agent.momentum
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum if name == "momentum" else 0.0)
    gen, n = torch_generator(seed), data.x_train.shape[0]
    losses = []
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[: agent.batch_size]
        opt.zero_grad()
        value = loss(model(data.x_train[idx]), data.y_train[idx])
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    return dict(model.named_parameters()), losses


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_agent_learn_is_torch_optim_step_for_step(sinusoid, optimizer):
    agent = SupervisedAgent.for_distribution(
        sinusoid, seed=1, dtype=torch.float64, optimizer=optimizer, lr=0.01, batch_size=4
    )
    task = sinusoid.tasks("test")[0]
    expected, losses = reference_learn(agent, task, 12, seed=5)
    curve = agent.learn(task, 12, seed=5)
    for k, p in agent.model.named_parameters():
        torch.testing.assert_close(p, expected[k], rtol=1e-12, atol=1e-14)
    assert curve.values[:12] == pytest.approx(losses, rel=1e-12, abs=1e-14)


def test_stacked_layout_is_the_single_layout_task_by_task(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, dtype=torch.float64, batch_size=4)
    tasks, seeds = sinusoid.tasks("test")[:3], [4, 5, 6]
    start = {k: v.detach() for k, v in agent.model.named_parameters()}
    opt = InnerOptimizer("adam", 0.01)
    stacked = agent.task_batch(tasks, 6, seeds, batched=True)
    f = agent.loss_function(stacked.loss)
    together = inner_loop(f, {k: v.expand(3, *v.shape) for k, v in start.items()}, stacked, 6, opt)
    for i, (task, seed) in enumerate(zip(tasks, seeds, strict=True)):
        alone = inner_loop(f, start, agent.task_batch([task], 6, [seed], batched=False), 6, opt)
        for k in start:
            torch.testing.assert_close(together.params[k][i], alone.params[k], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(together.losses[:, i], alone.losses, rtol=1e-12, atol=1e-14)


def test_unknown_inner_optimizer_is_refused():
    with pytest.raises(InvalidArgumentError, match="Unknown inner optimizer 'rmsprop'"):
        InnerOptimizer("rmsprop", 0.1)


@pytest.mark.parametrize("batched", [False, True])
def test_params_subset_means_the_same_for_callback_and_trajectory_learners(sinusoid, batched):
    """With ``params=[...]`` every learner starts each task's other parameters from the agent's init for
    the task's seed: FOMAML (a callback) and MAML (a trajectory learner) see the same inner loops."""

    def first_losses(learner):
        agent = SupervisedAgent.for_distribution(sinusoid, seed=0, dtype=torch.float64, batched=batched)
        result = meta_train(
            agent, sinusoid, learner, meta_steps=2, meta_batch_size=3, inner_steps=4, progress=False
        )
        return [row["first_value"] for row in result.history]

    callback = first_losses(FOMAML(params=["5"], meta_optimizer="sgd"))
    trajectory = first_losses(MAML(params=["5"], meta_optimizer="sgd"))
    assert callback[0] == pytest.approx(trajectory[0], rel=1e-12)
    assert len(callback) == len(trajectory) == 2


def test_execution_path_is_chosen_once_from_the_learner_and_the_agent(sinusoid, cartpole):
    import agents

    loop = SupervisedAgent.for_distribution(sinusoid)
    batched = SupervisedAgent.for_distribution(sinusoid, batched=True)
    rl = agents.make_agent(cartpole, n_envs=1)
    assert execution_path(loop, Leap()) == "local"
    assert execution_path(batched, Leap()) == "batched"
    assert execution_path(batched, make_meta_learner("maml")) == "batched"
    assert execution_path(loop, CTS()) == "lockstep"
    assert execution_path(batched, CTS()) == "batched"
    assert execution_path(batched, CTS(accurate=True)) == "lockstep"
    assert execution_path(rl, CTS()) == "lockstep"
    assert execution_path(loop, CTS(), "ray") == "ray-lockstep"
    assert execution_path(loop, MAML(), "ray") == "ray"
    with pytest.raises(InvalidArgumentError, match="executor"):
        execution_path(loop, Leap(), "dask")
    assert Leap.kind == "callback" and MAML.kind == "trajectory"
    assert loop.capabilities.stepwise and not rl.capabilities.stepwise


@pytest.mark.parametrize("batched", [False, True])
def test_linearization_is_the_hessian_of_the_loss(batched):
    """The one HVP against ``torch.autograd.functional.hessian`` (float64), in both layouts."""
    from agents.functional import linearization

    gen = torch_generator(3)
    x = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 3, generator=gen, dtype=torch.float64)

    def loss(u, x, y):
        return (torch.tanh(x @ u) - y).pow(2).mean()

    if batched:
        value, g, hessian = linearization(loss, w, x, y, batched=True)
        products = hessian(v)
    else:
        outs = [linearization(loss, w[i], x[i], y[i], batched=False) for i in range(2)]
        value = torch.stack([o[0] for o in outs])
        g = torch.stack([o[1] for o in outs])
        products = torch.stack([o[2](v[i]) for i, o in enumerate(outs)])
    for i in range(2):
        h = torch.autograd.functional.hessian(lambda u, i=i: loss(u, x[i], y[i]), w[i])
        torch.testing.assert_close(products[i], h @ v[i], rtol=1e-12, atol=1e-12)
        assert float(value[i]) == pytest.approx(float(loss(w[i], x[i], y[i])), rel=1e-14)
        torch.testing.assert_close(
            g[i], torch.autograd.functional.jacobian(lambda u, i=i: loss(u, x[i], y[i]), w[i])
        )
    assert not g.requires_grad


def test_linearize_needs_kept_steps(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    batch = agent.task_batch(sinusoid.tasks("test")[:1], 3, [0], batched=False)
    start = {k: v.detach() for k, v in agent.model.named_parameters()}
    f = agent.loss_function(batch.loss)
    with pytest.raises(InvalidArgumentError, match="keep_every"):
        inner_loop(f, start, batch, 3, agent.inner_optimizer, linearize=True)
    kept = inner_loop(f, start, batch, 3, agent.inner_optimizer, keep_every=1, linearize=True)
    plain = inner_loop(f, start, batch, 3, agent.inner_optimizer)
    assert sorted(kept.hessians) == [0, 1, 2]
    for k in plain.params:  # the same updates, bit for bit
        assert torch.equal(kept.params[k], plain.params[k])


def test_loss_function_keeps_tied_weights_tied():
    """Untying is skipped only for models without tied weights."""
    from agents.task_data import loss_function

    model = torch.nn.Sequential(torch.nn.Linear(3, 3, bias=False), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    model[2].weight = model[0].weight  # tied
    params = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    x, y = torch.ones(4, 3), torch.ones(4, 3)
    f = loss_function(model, "mse")
    bias_only = torch.nn.functional.mse_loss(params["2.bias"].expand(4, 3), y)
    assert float(f(params, x, y)) == pytest.approx(float(bias_only))
