import numpy as np
import pytest
import torch

import agents
from agents import SupervisedAgent
from agents.hooks import Hook
from metaenvs.errors import (
    IncompatibleAgentError,
    InvalidArgumentError,
    NonFiniteError,
    WrongDistributionError,
)


class Recorder(Hook):
    def __init__(self):
        self.events = []

    def on_task_start(self, ctx):
        self.events.append(("start", ctx.task.id))

    def on_inner_step(self, ctx):
        self.events.append(("step", ctx.step, float(ctx.loss), {k: g.clone() for k, g in ctx.grads.items()}))

    def on_task_end(self, ctx):
        self.events.append(("end", len(ctx.curve.values)))


def test_supervised_learn_records_curve_and_fires_events(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    rec = Recorder()
    task = sinusoid.tasks("test")[0]
    curve = agent.learn(task, 5, hooks=[rec])
    kinds = [e[0] for e in rec.events]
    assert kinds == ["start"] + ["step"] * 5 + ["end"]
    assert len(curve.values) == 6 and curve.x_unit == "inner_step"
    assert [e[2] for e in rec.events if e[0] == "step"] == curve.values[:5]
    assert set(agent.evaluate(task)) == {"loss", "mse"}


def test_hook_sees_grads_before_the_step(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, lr=0.1, dtype=torch.float64)
    task = sinusoid.tasks("test")[0]
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}

    class CheckPre(Hook):
        def on_inner_step(self, ctx):
            if ctx.step == 0:
                for k, v in ctx.params.items():
                    assert torch.equal(v, before[k])

    agent.learn(task, 1, hooks=[CheckPre()])
    for k, v in agent.model.named_parameters():
        assert not torch.equal(v, before[k])


def test_functional_loss_matches_module_loss(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0, dtype=torch.float64)
    task = sinusoid.tasks("test")[1]
    data = agent.data(task)
    module_loss = torch.nn.functional.mse_loss(agent.model(data.x_train), data.y_train)
    assert torch.equal(agent.task_loss(agent.named_parameters(), task), module_loss)


def test_supervised_learning_is_bitwise_deterministic(sinusoid):
    def run():
        agent = SupervisedAgent.for_distribution(sinusoid, seed=3, batch_size=4)
        agent.learn(sinusoid.tasks("test")[0], 10, seed=1)
        return torch.cat([p.detach().flatten() for p in agent.model.parameters()])

    assert torch.equal(run(), run())


@pytest.mark.parametrize("steps", [0, -1, 1.5, None])
def test_non_positive_steps_are_refused(sinusoid, steps):
    agent = SupervisedAgent.for_distribution(sinusoid)
    with pytest.raises(InvalidArgumentError, match="steps must be a positive int"):
        agent.learn(sinusoid.tasks("test")[0], steps)


def test_non_finite_loss_stops_the_task(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid, lr=1e6)
    with pytest.raises(NonFiniteError, match=r"inner step .* of task 'test/0000'"):
        agent.learn(sinusoid.tasks("test")[0], 200)


def test_task_with_other_shapes_is_refused(sinusoid):
    import metaenvs

    agent = SupervisedAgent.for_distribution(sinusoid)
    other = metaenvs.make("Synthetic/Sinusoid-v0", shots=3)  # same shapes: accepted
    agent.learn(other.tasks("test")[0], 1)
    wide = SupervisedAgent((2,), 1)
    with pytest.raises(WrongDistributionError, match="inputs \\(1,\\)"):
        wide.learn(sinusoid.tasks("test")[0], 1)


def test_bad_agent_settings_are_refused():
    with pytest.raises(InvalidArgumentError, match="optimizer must be one of"):
        SupervisedAgent((1,), 1, optimizer="rmsprop2")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        SupervisedAgent((1,), 1, batch_size=0)


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_actor_critic_hook_fires_once_per_step_with_backpropagated_loss(cartpole, algo, monkeypatch):
    kwargs = {"n_steps": 16, "batch_size": 32, "n_epochs": 2} if algo == "ppo" else {"n_steps": 5}
    agent = agents.make_agent(cartpole, algo=algo, n_envs=2, algo_kwargs=kwargs)
    backpropagated, steps, depth = [], [], [0]
    real_backward = torch.Tensor.backward

    def spy_backward(self, *args, **kw):  # an independent record of every backward() call
        if depth[0] == 0:  # the loss tap re-dispatches through Tensor.backward once more
            backpropagated.append(float(self.detach()))
        depth[0] += 1
        try:
            return real_backward(self, *args, **kw)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(torch.Tensor, "backward", spy_backward)
    rec = Recorder()

    class CountSteps(Hook):
        def on_task_start(self, ctx):
            ctx.agent.model.optimizer.register_step_post_hook(lambda *a: steps.append(1))

    curve = agent.learn(cartpole.tasks("test")[0], 320, hooks=[CountSteps(), rec], seed=0)
    hooked = [e[2] for e in rec.events if e[0] == "step"]
    assert len(hooked) == len(steps) == len(backpropagated) > 0
    assert hooked == backpropagated == curve.losses
    assert all(len(e[3]) == len(list(agent.model.parameters())) for e in rec.events if e[0] == "step")


def test_actor_critic_is_deterministic_and_leaves_global_rng_alone(cartpole):
    agent = agents.make_agent(cartpole, n_envs=2)
    np.random.seed(123)  # the caller's own global state (test code, not library code)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()

    def run():
        agent.reset(0)
        curve = agent.learn(cartpole.tasks("test")[0], 400, seed=4)
        return curve.losses, torch.cat([p.detach().flatten() for p in agent.model.parameters()])

    (l1, p1), (l2, p2) = run(), run()
    assert l1 == l2 and torch.equal(p1, p2)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_actor_critic_refuses_a_task_with_other_spaces(cartpole):
    import metaenvs

    agent = agents.make_agent(cartpole, n_envs=1)
    pendulum = metaenvs.make("Control/PendulumPhysics-v0")
    with pytest.raises(IncompatibleAgentError, match="spaces"):
        agent.learn(pendulum.tasks("test")[0], 10)


def test_actor_critic_evaluate_reports_return(cartpole):
    agent = agents.make_agent(cartpole, n_envs=1, eval_episodes=2)
    scores = agent.evaluate(cartpole.tasks("test")[0])
    assert scores["return"] > 0


def scaled_cartpole(render_mode=None):
    """CartPole whose training reward is halved after its raw episode statistics are recorded."""
    import gymnasium as gym

    env = gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1", render_mode=render_mode))
    return gym.wrappers.TransformReward(env, lambda r: 0.5 * r)


def test_actor_critic_reports_the_envs_own_raw_returns(scratch_registry):
    import gymnasium as gym

    import metaenvs
    from agents.actor_critic import ActorCritic, records_episodes
    from metaenvs.seeding import derive_seed

    gym.register("metaenvs-test/ScaledCartPole-v0", entry_point="tests.test_agents:scaled_cartpole")
    try:
        metaenvs.register(
            "Test/ScaledCartPole-v0",
            "metaenvs.control:GymEnvList",
            kwargs={"train": ["CartPole-v1"], "test": ["metaenvs-test/ScaledCartPole-v0"]},
        )
        dist = metaenvs.make("Test/ScaledCartPole-v0")
        task = dist.tasks("test")[0]
        assert records_episodes(task.make_env()) and not records_episodes(gym.make("CartPole-v1"))
        agent = ActorCritic.for_distribution(dist, seed=0, eval_episodes=3, n_envs=2)
        curve = agent.learn(task, steps=400)
        # Raw CartPole returns are episode lengths (whole numbers); halved rewards would give halves.
        assert curve.values and all(v == int(v) and v >= 8 for v in curve.values)
        agent.eval_episodes = 1
        score = agent.evaluate(task, seed=0)["return"]
        env = task.make_env()  # the same deterministic episode, counted in steps (= raw CartPole return)
        obs, _ = env.reset(seed=derive_seed(0, 3))
        length, done = 0, False
        while not done:
            action, _ = agent.model.predict(obs[None], deterministic=True)
            obs, _, terminated, truncated, _ = env.step(int(action[0]))
            length, done = length + 1, terminated or truncated
        assert score == length
    finally:
        del gym.registry["metaenvs-test/ScaledCartPole-v0"]
