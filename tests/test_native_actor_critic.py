"""The native actor-critic: SB3's losses on fixed batches, hooks fired by its own loop, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import metaenvs
from agents.hooks import Hook
from agents.native import NativeActorCritic
from agents.native.losses import a2c_loss, advantages_and_returns, ppo_loss
from baselines import make_meta_learner, meta_train
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError

sb3 = pytest.importorskip("stable_baselines3")


def spaces(dist):
    env = dist.tasks("test")[0].make_env()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


@pytest.fixture
def pendulum():
    return metaenvs.make("Control/PendulumPhysics-v0")


def sb3_run(algo_name, dist, native, n_envs, **algo_kwargs):
    """An SB3 algorithm on ``dist``'s first test task with the native agent's parameters, one rollout
    collected; returns it, its buffer's inputs as the native loop stores them, and SB3's logged losses."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import DummyVecEnv

    task = dist.tasks("test")[0]
    env = DummyVecEnv([task.make_env] * n_envs)
    env.seed(0)
    algo = getattr(sb3, algo_name.upper())("MlpPolicy", env, seed=0, **algo_kwargs)
    algo.set_logger(Logger(folder=None, output_formats=[]))
    assert [n for n, _ in algo.policy.named_parameters()] == [n for n, _ in native.model.named_parameters()]
    with torch.no_grad():
        for name, p in algo.policy.named_parameters():
            p.copy_(dict(native.model.named_parameters())[name])
    algo._setup_learn(algo.n_steps * n_envs, callback=None)
    callback = CallbackList([])
    callback.init_callback(algo)
    algo.collect_rollouts(env, callback, algo.rollout_buffer, algo.n_steps)
    buf = algo.rollout_buffer
    starts = torch.as_tensor(buf.episode_starts, dtype=torch.float32)
    dones = torch.cat([starts[1:], torch.as_tensor(algo._last_episode_starts, dtype=torch.float32)[None]])
    with torch.no_grad():
        last_values = algo.policy.predict_values(torch.as_tensor(algo._last_obs)).flatten()
    batch = {
        "obs": torch.as_tensor(buf.observations).flatten(0, 1),
        "actions": torch.as_tensor(buf.actions).flatten(0, 1),
        "log_probs": torch.as_tensor(buf.log_probs).flatten(),
        "values": torch.as_tensor(buf.values).flatten(),
        "rewards": torch.as_tensor(buf.rewards),
        "dones": dones,
        "last_values": last_values,
        "advantages": torch.as_tensor(buf.advantages),
        "returns": torch.as_tensor(buf.returns),
    }
    seen = []  # the parameters at every optimizer step (a pre-hook runs after backward, before the step)
    algo.policy.optimizer.register_step_pre_hook(
        lambda *_: seen.append({n: p.detach().clone() for n, p in algo.policy.named_parameters()})
    )
    algo.train()
    logged = {**algo.logger.name_to_value, "params": seen}
    env.close()
    return algo, batch, logged


def test_returns_and_advantages_equal_sb3s_rollout_buffer(cartpole):
    obs, act = spaces(cartpole)
    native = NativeActorCritic(obs, act, algo="ppo", n_envs=2, seed=0)
    _, batch, _ = sb3_run("ppo", cartpole, native, 2, n_steps=64, batch_size=128, n_epochs=1, gae_lambda=0.9)
    assert batch["dones"].sum() > 0, "the rollout must cross an episode end"
    advantages, returns = advantages_and_returns(
        batch["rewards"], batch["values"].view(64, 2), batch["dones"], batch["last_values"], 0.99, 0.9
    )
    torch.testing.assert_close(advantages, batch["advantages"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(returns, batch["returns"], rtol=1e-5, atol=1e-5)


def test_a2c_loss_equals_sb3s_on_the_same_parameters_and_batch(cartpole):
    obs, act = spaces(cartpole)
    native = NativeActorCritic(obs, act, algo="a2c", n_envs=4, seed=3)
    _, batch, logged = sb3_run("a2c", cartpole, native, 4, n_steps=8, ent_coef=0.01)
    head, values = native.model(batch["obs"])
    log_prob, entropy = native.model.log_prob_entropy(head, batch["actions"].flatten())
    parts = a2c_loss(
        log_prob, entropy, values, batch["advantages"].flatten(), batch["returns"].flatten(), 0.01, 0.5
    )
    assert float(parts.policy) == pytest.approx(logged["train/policy_loss"], rel=1e-5, abs=1e-7)
    assert float(parts.value) == pytest.approx(logged["train/value_loss"], rel=1e-5)
    assert float(parts.entropy) == pytest.approx(logged["train/entropy_loss"], rel=1e-5)


@pytest.mark.parametrize("which", ["cartpole", "pendulum"])
def test_ppo_loss_equals_sb3s_with_clipping_and_normalised_advantages(which, cartpole, pendulum):
    dist = {"cartpole": cartpole, "pendulum": pendulum}[which]
    obs, act = spaces(dist)
    native = NativeActorCritic(obs, act, algo="ppo", n_envs=2, seed=1)
    # two epochs of one full minibatch: SB3's last loss is at the parameters its first step moved (a large
    # step, so that ratios leave [0.8, 1.2] and both clippings act); the logged parts average the two
    kwargs = {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "ent_coef": 0.02, "clip_range_vf": 0.1}
    _, batch, logged = sb3_run("ppo", dist, native, 2, learning_rate=0.05, **kwargs)
    assert logged["train/clip_fraction"] > 0
    parts = []
    for params in logged["params"]:
        with torch.no_grad():
            for name, p in native.model.named_parameters():
                p.copy_(params[name])
        head, values = native.model(batch["obs"])
        actions = batch["actions"] if native.model.continuous else batch["actions"].flatten()
        log_prob, entropy = native.model.log_prob_entropy(head, actions)
        loss, kl = ppo_loss(
            log_prob, batch["log_probs"], entropy, values, batch["values"], batch["advantages"].flatten(),
            batch["returns"].flatten(), 0.2, 0.1, 0.02, 0.5,
        )  # fmt: skip
        parts.append((loss, float(kl)))
    assert float(parts[-1][0].total.detach()) == pytest.approx(logged["train/loss"], rel=1e-5, abs=1e-7)
    assert parts[-1][1] > 0 and parts[-1][1] == pytest.approx(logged["train/approx_kl"], rel=1e-4)
    for key, field in (
        ("policy_gradient_loss", "policy"),
        ("value_loss", "value"),
        ("entropy_loss", "entropy"),
    ):
        mean = np.mean([float(getattr(loss, field)) for loss, _ in parts])
        assert mean == pytest.approx(logged[f"train/{key}"], rel=1e-5, abs=1e-7), key


def test_the_network_has_sb3s_parameter_names_and_shapes():
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from agents.sb3_hooks import resolve_policy_kwargs

    dist = metaenvs.make("Atari/LeapPool-100k-v0")
    obs, act = spaces(dist)
    native = NativeActorCritic(obs, act, policy="CnnPolicy", policy_kwargs={"features_extractor": "mnih2013"})
    policy = ActorCriticCnnPolicy(
        obs, act, lambda _: 1e-3, **resolve_policy_kwargs({"features_extractor": "mnih2013"})
    )
    assert {n: p.shape for n, p in policy.named_parameters()} == {
        n: p.shape for n, p in native.model.named_parameters()
    }


class Recorder(Hook):
    def __init__(self):
        self.events = []

    def on_task_start(self, ctx):
        self.events.append(("start",))

    def on_inner_step(self, ctx):
        grads = {k: g.clone() for k, g in ctx.grads.items()}
        self.events.append(
            (
                "step",
                ctx.step,
                float(ctx.loss),
                grads,
                float(torch.nn.utils.get_total_norm(list(grads.values()))),
            )
        )

    def on_step_end(self, ctx):
        self.events.append(("end_step", ctx.step))

    def on_task_end(self, ctx):
        self.events.append(("end",))


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_hooks_fire_once_per_optimizer_step_with_the_backpropagated_loss(cartpole, algo, monkeypatch):
    kwargs = {"n_steps": 16, "batch_size": 12, "n_epochs": 2} if algo == "ppo" else {"n_steps": 5}
    obs, act = spaces(cartpole)
    agent = NativeActorCritic(obs, act, algo=algo, n_envs=2, algo_kwargs=kwargs)
    backpropagated, steps = [], []
    real_backward = torch.Tensor.backward

    def spy_backward(self, *args, **kw):  # an independent record of every backward() call
        backpropagated.append(float(self.detach()))
        return real_backward(self, *args, **kw)

    monkeypatch.setattr(torch.Tensor, "backward", spy_backward)
    handle = register_optimizer_step_post_hook(lambda *a: steps.append(1))
    rec = Recorder()
    try:
        curve = agent.learn(cartpole.tasks("test")[0], 320, hooks=[rec], seed=0)
    finally:
        handle.remove()
    hooked = [e for e in rec.events if e[0] == "step"]
    expected = 320 // 32 * 2 * 3 if algo == "ppo" else 320 // 10  # rollouts x epochs x minibatches
    assert len(hooked) == len(steps) == len(backpropagated) == expected
    assert [e[2] for e in hooked] == backpropagated == curve.losses
    assert all(e[4] <= 0.5 + 1e-5 for e in hooked), "gradients are seen after clipping (max_grad_norm 0.5)"
    assert all(len(e[3]) == len(list(agent.model.parameters())) for e in hooked)
    kinds = [e[0] for e in rec.events]
    assert kinds == ["start"] + ["step", "end_step"] * expected + ["end"]


def test_learning_is_bitwise_deterministic_and_leaves_global_rng_alone(cartpole):
    obs, act = spaces(cartpole)
    np.random.seed(123)  # the caller's own global state (test code, not library code)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()

    def run(agent):
        agent.reset(0)
        curve = agent.learn(cartpole.tasks("test")[0], 400, seed=4)
        return curve.losses, curve.values, torch.cat([p.detach().flatten() for p in agent.model.parameters()])

    agent = NativeActorCritic(obs, act, algo="ppo", n_envs=2, algo_kwargs={"n_steps": 50, "batch_size": 25})
    first, cached = run(agent), run(agent)  # the second reuses the cached vector env
    fresh = run(
        NativeActorCritic(obs, act, algo="ppo", n_envs=2, algo_kwargs={"n_steps": 50, "batch_size": 25})
    )
    for other in (cached, fresh):
        assert first[0] == other[0] and first[1] == other[1] and torch.equal(first[2], other[2])
    assert len(agent._envs) == 1
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_sync_and_async_vector_envs_learn_the_same_bits(cartpole):
    obs, act = spaces(cartpole)
    curves = []
    for vectorizer in ("sync", "async"):
        agent = NativeActorCritic(obs, act, n_envs=2, vectorizer=vectorizer)
        curves.append(agent.learn(cartpole.tasks("test")[0], 200, seed=1))
        agent.close()
    assert curves[0].losses == curves[1].losses and curves[0].values == curves[1].values


def test_a_gaussian_policy_learns_and_evaluates_in_its_bounds(pendulum):
    obs, act = spaces(pendulum)
    agent = NativeActorCritic(obs, act, algo="ppo", n_envs=2, eval_episodes=2, algo_kwargs={"n_steps": 64})
    curve = agent.learn(pendulum.tasks("test")[0], 400, seed=0)
    assert len(curve.values) == 2 and all(np.isfinite(curve.values))  # 200-step episodes
    scores = agent.evaluate(pendulum.tasks("test")[0], seed=0)
    assert np.isfinite(scores["return"]) and "success_rate" not in scores


def test_training_scores_need_the_runs_curve(cartpole):
    obs, act = spaces(cartpole)
    agent = NativeActorCritic(obs, act, n_envs=2, eval_mode="training", eval_episodes=3)
    task = cartpole.tasks("test")[0]
    with pytest.raises(InvalidArgumentError, match="pass the curve that learn"):
        agent.evaluate(task)
    curve = agent.learn(task, 300, seed=0)
    assert agent.evaluate(task, curve=curve)["return"] == pytest.approx(np.mean(curve.values[-3:]))


def test_bad_settings_and_spaces_are_refused(cartpole):
    obs, act = spaces(cartpole)
    with pytest.raises(InvalidArgumentError, match=r"Unknown algo_kwargs \['use_sde'\]"):
        NativeActorCritic(obs, act, algo_kwargs={"use_sde": True})
    with pytest.raises(InvalidArgumentError, match="algo must be one of"):
        NativeActorCritic(obs, act, algo="dqn")
    with pytest.raises(InvalidArgumentError, match="n_steps"):
        NativeActorCritic(obs, act, algo_kwargs={"n_steps": 0})
    import gymnasium as gym

    with pytest.raises(IncompatibleAgentError, match="Box observations"):
        NativeActorCritic(gym.spaces.Discrete(3), act)
    agent = NativeActorCritic(obs, act)
    wide = {"action_net.weight": torch.zeros(3, 64)}
    with pytest.raises(IncompatibleAgentError, match=r"action_net.weight has shape \(3, 64\)"):
        agent.set_parameters(wide)


def meta_run(dist, name, out, stop=None):
    obs, act = spaces(dist)
    agent = NativeActorCritic(obs, act, n_envs=2, algo_kwargs={"n_steps": 5})
    return meta_train(
        agent, dist, make_meta_learner(name), meta_steps=2, meta_batch_size=2,
        inner_steps=40, seed=0, out_dir=out, progress=False, max_steps_this_call=stop,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["leap", "reptile", "fomaml", "fomamlpp", "cts", "mtl", "scratch"])
def test_meta_learners_run_on_it_and_a_killed_run_resumes_bitwise(cartpole, tmp_path, name):
    straight = meta_run(cartpole, name, tmp_path / "straight")
    meta_run(cartpole, name, tmp_path / "killed", stop=1)  # stops after a checkpoint, as a kill would
    resumed = meta_run(cartpole, name, tmp_path / "killed")
    assert resumed.resumed_from == 1
    assert all(torch.equal(straight.init[k], resumed.init[k]) for k in straight.init)
    assert all(torch.isfinite(v).all() for v in straight.init.values())


def test_the_sb3_agent_initialises_as_sb3_does_under_a_seeded_fork(cartpole):
    from stable_baselines3.common.policies import ActorCriticPolicy

    from agents import make_agent

    before = torch.random.get_rng_state()
    agent = make_agent(cartpole, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    obs, act = spaces(cartpole)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        reference = ActorCriticPolicy(obs, act, lambda _: 1e-3).state_dict()
    assert all(torch.equal(p, reference[n]) for n, p in agent.model.state_dict().items())


def test_verification_re_runs_with_the_submitted_runs_execution_settings():
    from leaderboard.verify import execution_settings

    agent = {"type": "native_actor_critic", "n_envs": 16, "channels_last": True, "compile": False}
    assert execution_settings({"agent": {**agent, "device": "cpu"}}) == {
        "channels_last": True, "compile": False, "device": "cpu",
    }  # fmt: skip
    on_gpu = execution_settings({"agent": {**agent, "device": "cuda:0"}})
    assert ("device" in on_gpu) == torch.cuda.is_available()  # a device this machine lacks is not asked for
    assert execution_settings({"agent": {"type": "supervised", "lr": 0.01}}) == {}
