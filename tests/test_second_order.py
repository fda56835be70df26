"""Second-order meta-learners against finite differences, autograd and closed forms (float64)."""

import copy

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import agents
from agents import SupervisedAgent
from baselines import AMAML, IMAML, MAML, ExactAdjoint, make_meta_learner, meta_train
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, NonFiniteError
from metaenvs.metrics import get_loss


def mlp_agent(sinusoid, lr=0.05, optimizer="sgd"):
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    agent = SupervisedAgent((1,), 1, model=model, lr=lr, optimizer=optimizer, dtype=torch.float64)
    agent.reset(3)
    return agent


def linear_agent(lr=0.05):
    model = nn.Linear(1, 1).double()
    with torch.no_grad():
        model.weight.fill_(0.3)
        model.bias.fill_(-0.2)
    return SupervisedAgent((1,), 1, model=model, lr=lr, dtype=torch.float64)


def flat(grads):
    return torch.cat([g.reshape(-1) for g in grads.values()])


def task_gradient(learner, agent, task, steps):
    learner.initialize(agent)
    learner.learn_task(agent, task, steps, seed=0)
    return flat(learner.meta_gradient())


def finite_difference(agent, task, steps, objective, eps=1e-6):
    params = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    names = list(params)
    vector = torch.cat([params[k].reshape(-1) for k in names])
    out = torch.zeros_like(vector)
    for i in range(vector.numel()):
        values = []
        for sign in (1, -1):
            v = vector.clone()
            v[i] += sign * eps
            values.append(
                objective(dict(zip(names, torch.split(v, [params[k].numel() for k in names]), strict=True)))
            )
        out[i] = (values[0] - values[1]) / (2 * eps)
    return out


def maml_objective(agent, task, steps, inner="sgd"):
    """The query loss after ``steps`` full-batch steps of ``torch.optim`` (an independent reference)."""
    data = agent.data(task)
    loss = get_loss(data.loss)
    x_query, y_query = data.query()

    def objective(split):
        model = copy.deepcopy(agent.model)
        with torch.no_grad():
            for (_, p), s in zip(model.named_parameters(), split.values(), strict=True):
                p.copy_(s.reshape(p.shape))
        if inner == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=agent.lr)
        else:
            opt = torch.optim.SGD(
                model.parameters(), lr=agent.lr, momentum=agent.momentum * (inner == "momentum")
            )
        for _ in range(steps):
            opt.zero_grad()
            loss(model(data.x_train), data.y_train).backward()
            opt.step()
        with torch.no_grad():
            return float(loss(model(x_query), y_query))

    return objective


@pytest.mark.parametrize("inner", ["sgd", "momentum", "adam"])
def test_maml_matches_central_finite_differences(sinusoid, inner):
    agent = mlp_agent(sinusoid, lr=0.01 if inner == "adam" else 0.05, optimizer=inner)
    task = sinusoid.tasks("test")[0]
    analytic = task_gradient(MAML(), agent, task, 3)  # through the agent's own optimizer
    numeric = finite_difference(agent, task, 3, maml_objective(agent, task, 3, inner))
    assert float((analytic - numeric).norm() / numeric.norm()) < 1e-5


@pytest.mark.parametrize("checkpoint", [False, True])
@pytest.mark.parametrize("steps", [10, 25])
def test_exact_adjoint_equals_maml_autograd(sinusoid, checkpoint, steps):
    agent = mlp_agent(sinusoid)
    task = sinusoid.tasks("test")[1]
    maml = task_gradient(MAML(), agent, task, steps)
    adjoint = task_gradient(ExactAdjoint(checkpoint=checkpoint), agent, task, steps)
    assert float((maml - adjoint).abs().max()) < 1e-8


def test_first_order_maml_is_fomaml_and_has_one_implementation(sinusoid):
    with pytest.raises(InvalidArgumentError, match=r"is FOMAML.*'fomaml'"):
        MAML(first_order=True)


def amaml_gradient(learner, agent, task, horizon):
    """A-MAML's meta-gradient for flow time ``horizon`` (= lr x inner steps)."""
    steps = round(horizon / agent.lr)
    assert abs(steps * agent.lr - horizon) < 1e-12
    return task_gradient(learner, agent, task, steps)


def quadratic_problem(agent, task):
    data = agent.data(task)
    design = lambda x: torch.cat([x, torch.ones_like(x)], 1).numpy()  # noqa: E731 - (w, b) features
    x, y = design(data.x_train), data.y_train.numpy().ravel()
    xq, yq = design(data.x_test), data.y_test.numpy().ravel()
    a, b = 2 * x.T @ x / len(y), 2 * x.T @ y / len(y)
    return a, b, (lambda u: 2 * xq.T @ (xq @ u - yq) / len(yq))


def test_imaml_matches_closed_form_on_quadratic_tasks(sinusoid):
    agent, reg = linear_agent(lr=0.05), 2.0
    task = sinusoid.tasks("test")[0]
    a, b, query_grad = quadratic_problem(agent, task)
    theta = np.array([0.3, -0.2])
    u_star = np.linalg.solve(a + reg * np.eye(2), b + reg * theta)
    expected = np.linalg.solve(np.eye(2) + a / reg, query_grad(u_star))
    got = task_gradient(IMAML(reg=reg, cg_steps=2), agent, task, 2000).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def amaml_errors(agent, task, horizon, steps, **kwargs):
    a, b, query_grad = quadratic_problem(agent, task)
    theta = np.array([0.3, -0.2])
    u_star = np.linalg.solve(a, b)
    flow = scipy.linalg.expm(-a * horizon)
    exact = flow.T @ query_grad(u_star + flow @ (theta - u_star))
    errors = []
    for h in steps:
        learner = AMAML(step=h, solver="rk45", rtol=1e-12, atol=1e-12, **kwargs)
        errors.append(float(np.abs(amaml_gradient(learner, agent, task, horizon).numpy() - exact).max()))
    return errors


def test_amaml_converges_with_order_two(sinusoid):
    agent = linear_agent()
    errors = amaml_errors(agent, sinusoid.tasks("test")[0], 1.0, [0.05, 0.025, 0.0125])
    orders = [np.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(1.8 < o < 2.2 for o in orders), orders


def test_amaml_prox_gradient_matches_finite_differences(sinusoid):
    from torchdiffeq import odeint

    agent, prox, horizon = linear_agent(), 0.7, 0.5
    task = sinusoid.tasks("test")[0]
    learner = AMAML(step=0.0005, solver="rk45", rtol=1e-12, atol=1e-12, prox=prox)
    analytic = amaml_gradient(learner, agent, task, horizon)
    a, b, _ = quadratic_problem(agent, task)
    data = agent.data(task)

    def objective(split):
        theta = torch.cat([v.reshape(-1) for v in split.values()])
        at, bt = torch.tensor(a), torch.tensor(b)
        u_t = odeint(
            lambda _t, u: -(at @ u - bt) - prox * (u - theta),
            theta,
            torch.tensor([0.0, horizon]),
            method="dopri5",
            rtol=1e-12,
            atol=1e-12,
        )[-1]
        pred = data.x_test[:, 0] * u_t[0] + u_t[1]
        return float(((pred - data.y_test[:, 0]) ** 2).mean() + prox / 2 * ((u_t - theta) ** 2).sum())

    numeric = finite_difference(agent, task, 0, objective)
    assert float((analytic - numeric).norm() / numeric.norm()) < 1e-5


def test_amaml_early_stopping_uses_the_best_time(sinusoid):
    agent = mlp_agent(sinusoid)
    task = sinusoid.tasks("test")[0]
    assert torch.isfinite(amaml_gradient(AMAML(step=0.05, early_stopping=True), agent, task, 2.0)).all()


@pytest.mark.parametrize("cls", [MAML, IMAML, AMAML, ExactAdjoint])
def test_rl_agents_are_refused_with_first_order_alternatives(cartpole, cls):
    agent = agents.make_agent(cartpole, n_envs=1)
    with pytest.raises(IncompatibleAgentError, match=r"differentiable.*leap, reptile, fomaml, fomamlpp, cts"):
        cls().initialize(agent)


@pytest.mark.parametrize("cls", [MAML, ExactAdjoint, IMAML, AMAML])
def test_non_finite_inner_loss_is_refused_and_init_kept(sinusoid, cls):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, lr=1e5)
    learner = cls(**({"step": 1000.0} if cls is AMAML else {}))
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    with pytest.raises(NonFiniteError):
        meta_train(agent, sinusoid, learner, meta_steps=1, meta_batch_size=1, inner_steps=50, progress=False)
    assert all(torch.equal(learner.init[k], before[k]) for k in before)


@pytest.mark.parametrize("cls", [MAML, ExactAdjoint, IMAML, AMAML])
def test_second_order_meta_training_is_deterministic(sinusoid, cls):
    def run():
        agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
        learner = make_meta_learner(cls.name, sinusoid)  # the family's defaults (iMAML: reg 10)
        return meta_train(
            agent, sinusoid, learner, meta_steps=2, meta_batch_size=2, inner_steps=3, progress=False
        ).init

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("batched", [False, True])
def test_maml_through_adam_is_finite_and_exact_with_dead_units(sinusoid, batched):
    """A hidden unit that never fires has exactly zero gradients: Adam's sqrt(v) at v = 0 must not turn
    the meta-gradient into NaN (its true derivative is finite), in the per-task and the vmapped loop."""
    model = nn.Sequential(nn.Linear(1, 6), nn.ReLU(), nn.Linear(6, 1))
    agent = SupervisedAgent(
        (1,), 1, model=model, lr=0.01, optimizer="adam", dtype=torch.float64, batched=batched
    )
    agent.reset(3)
    with torch.no_grad():  # units 0 and 1 never fire on x in [-5, 5]: exactly zero gradients
        agent.model[0].weight[:2] = 0.0
        agent.model[0].bias[:2] = -1.0
    task = sinusoid.tasks("test")[0]
    learner = MAML()  # differentiates through the agent's Adam
    learner.initialize(agent)
    if batched:
        learner.learn_batch(agent, [task], 3, [0])
    else:
        learner.learn_task(agent, task, 3, seed=0)
    analytic = flat(learner.meta_gradient())
    assert bool(torch.isfinite(analytic).all())
    numeric = finite_difference(agent, task, 3, maml_objective(agent, task, 3, "adam"))
    dead = slice(0, 2)  # the dead units' incoming weights: zero meta-gradient, numerically too
    assert float(analytic[dead].abs().max()) == 0.0
    assert float((analytic - numeric).norm() / numeric.norm()) < 1e-5


@pytest.mark.parametrize("learner", [ExactAdjoint, IMAML, AMAML])
def test_gradient_descent_learners_refuse_another_inner_optimizer(sinusoid, learner):
    agent = mlp_agent(sinusoid, optimizer="momentum")
    with pytest.raises(IncompatibleAgentError, match=r"defined for inner sgd steps.*'momentum'.*Use maml"):
        learner().initialize(agent)


def test_maml_differentiates_through_the_agents_optimizer_and_refuses_another(sinusoid):
    agent = mlp_agent(sinusoid, optimizer="momentum")
    with pytest.raises(IncompatibleAgentError, match=r"inner_optimizer='sgd'.*'momentum'"):
        MAML(inner_optimizer="sgd").initialize(agent)
    task = sinusoid.tasks("test")[0]
    through_momentum = task_gradient(MAML(), agent, task, 3)
    sgd_agent = mlp_agent(sinusoid, optimizer="sgd")
    through_sgd = task_gradient(MAML(), sgd_agent, task, 3)
    assert not torch.allclose(through_momentum, through_sgd)  # another inner loop, another meta-gradient
    numeric = finite_difference(agent, task, 3, maml_objective(agent, task, 3, "momentum"))
    assert float((through_momentum - numeric).norm() / numeric.norm()) < 1e-5


def test_imaml_default_system_is_positive_definite_on_sinusoid():
    """At the CLI's default reg, ``I + H/reg`` at the proximal solution has no negative eigenvalue on
    six training tasks (at reg = 1 four of them do, and CG's answer was 25-118 % off the exact solve)."""
    import metaenvs
    from agents.functional import inner_loop

    dist = metaenvs.make("Synthetic/Sinusoid-v0")
    reg = make_meta_learner("imaml", dist).reg
    agent = SupervisedAgent.for_distribution(dist, seed=0, dtype=torch.float64)
    names = [k for k, _ in agent.model.named_parameters()]
    theta = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    smallest = []
    for i, task in enumerate(dist.sample(np.random.default_rng(0), "train", 6)):
        batch = agent.task_batch([task], dist.protocol.budget, [i], batched=False)
        f = agent.loss_function(batch.loss)
        u = inner_loop(f, theta, batch, dist.protocol.budget, agent.inner_optimizer, prox=(reg, theta)).params
        sizes = [u[k].numel() for k in names]

        def flat_loss(v, u=u, f=f, batch=batch, sizes=sizes):
            parts = dict(zip(names, torch.split(v, sizes), strict=True))
            return f({k: parts[k].reshape(u[k].shape) for k in names}, batch.x_train, batch.y_train)

        hessian = torch.autograd.functional.hessian(flat_loss, torch.cat([u[k].reshape(-1) for k in names]))
        smallest.append(1 + float(torch.linalg.eigvalsh(hessian)[0]) / reg)
    assert min(smallest) > 0, smallest


def test_imaml_refuses_an_indefinite_system_naming_the_task(sinusoid):
    from metaenvs.errors import IndefiniteSystemError

    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, dtype=torch.float64)
    task = sinusoid.sample(np.random.default_rng(0), "train", 1)[0]
    learner = IMAML(reg=0.05, cg_steps=20)
    learner.initialize(agent)
    with pytest.raises(IndefiniteSystemError, match=r"not positive definite.*Raise reg"):
        learner.learn_task(agent, task, 32, seed=0)


@pytest.mark.parametrize("batched", [False, True])
def test_one_conjugate_gradient_stops_on_tolerance_in_both_layouts(sinusoid, batched):
    from agents.curvature import conjugate_gradient

    gen = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    rhs = {"v": b.expand(3, 6).clone() if batched else b}
    matvec = lambda v: {"v": v["v"] @ a}  # noqa: E731 - symmetric: v @ a == a @ v
    solution, info = conjugate_gradient(matvec, rhs, steps=100, tol=1e-12, batched=batched)
    exact = torch.linalg.solve(a, b)
    assert info.iterations <= 7 and max(info.relative_residual) <= 1e-12
    torch.testing.assert_close(solution["v"], exact.expand_as(solution["v"]), rtol=1e-10, atol=1e-12)
