import pytest
import torch

import agents
from agents import SupervisedAgent
from baselines import Reptile, Scratch, make_meta_learner, meta_train
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, NonFiniteError


def _flat(tensors):
    return torch.cat([t.flatten() for t in tensors.values()])


def test_reptile_one_inner_step_equals_one_sgd_step(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, lr=0.05, dtype=torch.float64)
    learner = Reptile(meta_lr=1.0, schedule="constant")
    learner.initialize(agent, total_meta_steps=1)
    init = learner.initialization()
    task = sinusoid.tasks("test")[0]
    data = agent.data(task)
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    loss = agent.functional_loss(params, data.x_train, data.y_train, "mse")
    grads = torch.autograd.grad(loss, list(params.values()))
    expected = {k: init[k] - 0.05 * g for (k, g) in zip(init, grads, strict=True)}
    agent.learn(task, 1, hooks=[learner])
    learner.meta_update()
    for k, v in learner.initialization().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-14)


def test_reptile_is_init_plus_eps_times_mean_delta(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, dtype=torch.float64)
    learner = Reptile(meta_lr=0.3, schedule="constant")
    learner.initialize(agent)
    init = learner.initialization()
    finals = []
    for task in sinusoid.tasks("test")[:3]:
        agent.learn(task, 4, hooks=[learner])
        finals.append({k: v.detach().clone() for k, v in agent.model.named_parameters()})
    learner.meta_update()
    for k, v in learner.initialization().items():
        mean = sum(f[k] for f in finals) / 3
        torch.testing.assert_close(v, init[k] + 0.3 * (mean - init[k]), rtol=0, atol=1e-14)


def test_zero_meta_step_leaves_init_unchanged(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    result = meta_train(
        agent, sinusoid, Reptile(meta_lr=0.0), meta_steps=3, meta_batch_size=2, inner_steps=5, progress=False
    )
    assert torch.equal(_flat(result.init), _flat(before))


def test_linear_annealing_matches_reptile_schedule(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    result = meta_train(
        agent,
        sinusoid,
        Reptile(meta_lr=1.0, meta_lr_final=0.2),
        meta_steps=4,
        meta_batch_size=1,
        inner_steps=2,
        progress=False,
    )
    assert [round(r["meta_lr"], 12) for r in result.history] == [1.0, 0.8, 0.6, 0.4]


def test_scratch_never_changes_the_init(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    result = meta_train(
        agent, sinusoid, Scratch(), meta_steps=2, meta_batch_size=2, inner_steps=5, progress=False
    )
    assert torch.equal(_flat(result.init), _flat(before))


def test_meta_training_is_bitwise_deterministic(sinusoid):
    def run():
        agent = SupervisedAgent.for_distribution(sinusoid, seed=1, batch_size=5)
        return meta_train(
            agent, sinusoid, Reptile(), meta_steps=5, meta_batch_size=3, inner_steps=4, seed=9, progress=False
        )

    a, b = run(), run()
    assert torch.equal(_flat(a.init), _flat(b.init))
    assert [r["final_value"] for r in a.history] == [r["final_value"] for r in b.history]


def test_non_finite_inner_loss_leaves_init_unchanged(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, lr=1e6)
    learner = Reptile()
    with pytest.raises(NonFiniteError, match="Loss became"):
        meta_train(agent, sinusoid, learner, meta_steps=2, meta_batch_size=2, inner_steps=100, progress=False)
    fresh = SupervisedAgent.for_distribution(sinusoid, seed=0)
    assert torch.equal(_flat(learner.initialization()), _flat(dict(fresh.model.named_parameters())).detach())


def test_non_finite_meta_update_is_rolled_back(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    learner = Reptile(meta_lr=1.0)
    learner.initialize(agent)
    before = learner.initialization()
    learner._sum = {k: torch.full_like(v, float("inf")) for k, v in before.items()}
    learner._count = 1
    with pytest.raises(NonFiniteError):
        learner.meta_update()
    assert torch.equal(_flat(learner.initialization()), _flat(before))


def test_non_positive_batch_and_steps_are_refused(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid)
    for kwargs, name in [
        ({"meta_batch_size": 0}, "meta_batch_size"),
        ({"meta_steps": -2}, "meta_steps"),
        ({"inner_steps": 0}, "inner_steps"),
    ]:
        args = {"meta_steps": 1, "meta_batch_size": 1, "inner_steps": 1, **kwargs}
        with pytest.raises(InvalidArgumentError, match=name):
            meta_train(agent, sinusoid, Reptile(), progress=False, **args)


def test_unknown_algorithm_and_bad_meta_lr():
    with pytest.raises(
        InvalidArgumentError,
        match="available: adjoint, amaml, cts, fomaml, fomamlpp, imaml, leap, maml, mtl, reptile, scratch",
    ):
        make_meta_learner("reptil")
    with pytest.raises(InvalidArgumentError, match="meta_lr"):
        Reptile(meta_lr=-1)


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_reptile_on_actor_critic(cartpole, algo):
    kwargs = {"n_steps": 16, "batch_size": 32, "n_epochs": 1} if algo == "ppo" else {"n_steps": 5}
    agent = agents.make_agent(cartpole, algo=algo, n_envs=2, algo_kwargs=kwargs)
    learner = Reptile(meta_lr=0.5, schedule="constant")
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    result = meta_train(
        agent, cartpole, learner, meta_steps=2, meta_batch_size=2, inner_steps=320, progress=False
    )
    assert all(
        r["meta_grad_norm"] > 0 and torch.isfinite(torch.tensor(r["meta_grad_norm"])) for r in result.history
    )
    assert not torch.equal(_flat(result.init), _flat(before))


def test_meta_learner_subset_of_parameters(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    learner = Reptile(params=["1"])
    learner.initialize(agent)
    assert set(learner.init) == {"1.weight", "1.bias"}
    with pytest.raises(InvalidArgumentError, match="No parameter matches"):
        Reptile(params=["encoder"]).initialize(agent)


def test_capability_check_names_what_is_missing(sinusoid):
    class NeedsBatched(Reptile):
        required_capabilities = ("first_order", "batched")

    agent = SupervisedAgent.for_distribution(sinusoid)
    with pytest.raises(IncompatibleAgentError, match="needs an agent with batched"):
        NeedsBatched().initialize(agent)
