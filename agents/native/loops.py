"""The native actor-critic's training loops, one per algorithm, in plain sight (CleanRL's style).

Both collect rollouts with :func:`collect` into preallocated tensors and compute advantages with
:func:`~agents.native.losses.advantages_and_returns`; :func:`a2c` then takes one gradient step per
rollout, :func:`ppo` ``n_epochs`` passes of shuffled minibatches. Every optimizer step fires the
hooks itself, in the order of :mod:`agents.hooks`, and the loop yields after it, so a driver can
advance several tasks in lockstep. Rollouts and updates follow SB3's ``OnPolicyAlgorithm``: the same
number of rollouts for a budget, the same timeout bootstrap, losses and clipping.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from agents.curves import LearningCurve
from agents.hooks import Hook, InnerStepContext, StepEndContext, named_grads
from agents.native.envs import episode_ends, final_observations
from agents.native.losses import a2c_loss, advantages_and_returns, ppo_loss
from agents.parameters import finite_loss
from metaenvs.core import Task


@dataclass
class Run:
    """What one ``learn`` call's loop works with."""

    agent: Any
    task: Task
    env: VectorEnv
    hook: Hook
    curve: LearningCurve
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    steps: int
    settings: dict[str, Any]


class Rollout:
    """``n_steps x n_envs`` transitions in preallocated tensors on the agent's device."""

    def __init__(self, n_steps: int, env: VectorEnv, device: torch.device) -> None:
        obs_space, act_space = env.single_observation_space, env.single_action_space
        n = env.num_envs
        obs_dtype = torch.uint8 if obs_space.dtype == np.uint8 else torch.float32
        self.obs = torch.zeros((n_steps, n, *obs_space.shape), dtype=obs_dtype, device=device)
        act_shape = () if act_space.shape == () else act_space.shape
        act_dtype = torch.long if act_shape == () else torch.float32
        self.actions = torch.zeros((n_steps, n, *act_shape), dtype=act_dtype, device=device)
        self.log_probs, self.values, self.rewards, self.dones = (
            torch.zeros((n_steps, n), device=device) for _ in range(4)
        )


def collect(
    run: Run, rollout: Rollout, obs: torch.Tensor, timesteps: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fill ``rollout`` from ``obs`` on; the next observation, its values and the timesteps so far."""
    agent, env, net = run.agent, run.env, run.agent.model
    gamma = run.settings["gamma"]
    low, high = agent.action_bounds
    for t in range(rollout.obs.shape[0]):
        with torch.no_grad():
            head, values = agent.forward(obs)
            actions = net.sample(head, run.generator)
            log_probs, _ = net.log_prob_entropy(head, actions)
        env_actions = actions.cpu().numpy()
        if low is not None:  # SB3 steps clipped Gaussian actions and stores the raw ones
            env_actions = np.clip(env_actions, low, high)
        next_obs, rewards, terminated, truncated, infos = env.step(env_actions)
        timesteps += env.num_envs
        done = np.logical_or(terminated, truncated)
        for end in episode_ends(infos, done):
            run.curve.append(timesteps, end.ret)
            if end.success is not None:
                run.curve.successes.append(end.success)
        rewards = torch.as_tensor(np.asarray(rewards, dtype=np.float32), device=obs.device)
        timeouts = final_observations(infos, np.logical_and(truncated, ~terminated))
        if timeouts:  # SB3's bootstrap of a time limit: r += gamma * V(last observation)
            index = sorted(timeouts)
            last = torch.as_tensor(np.stack([timeouts[i] for i in index]), device=obs.device)
            with torch.no_grad():
                rewards[index] += gamma * net.value(last)
        rollout.obs[t], rollout.actions[t], rollout.log_probs[t] = obs, actions, log_probs
        rollout.values[t], rollout.rewards[t] = values, rewards
        rollout.dones[t] = torch.as_tensor(done, device=obs.device)
        obs = torch.as_tensor(next_obs, device=obs.device)
    with torch.no_grad():
        last_values = net.value(obs)
    return obs, last_values, timesteps


def gradient_step(run: Run, loss: torch.Tensor, step: int) -> None:
    """Back-propagate ``loss``, clip, fire ``on_inner_step``, step the optimizer, fire ``on_step_end``."""
    params = run.agent.live_parameters
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(params.values()), run.settings["max_grad_norm"])
    detached = loss.detach()
    run.curve.losses.append(finite_loss(detached, run.task, step))
    run.hook.on_inner_step(
        InnerStepContext(run.agent, run.task, step, detached, params, named_grads(params), run.optimizer)
    )
    run.optimizer.step()
    run.hook.on_step_end(StepEndContext(run.agent, run.task, step, params, run.optimizer))


def rollouts_for(steps: int, n_steps: int, n_envs: int) -> int:
    """SB3's ``learn(steps)``: rollouts until at least ``steps`` timesteps were collected."""
    return math.ceil(steps / (n_steps * n_envs))


def _flat(rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "obs": rollout.obs.flatten(0, 1),
        "actions": rollout.actions.flatten(0, 1),
        "log_probs": rollout.log_probs.flatten(),
        "values": rollout.values.flatten(),
        "advantages": advantages.flatten(),
        "returns": returns.flatten(),
    }


def a2c(run: Run, obs: torch.Tensor) -> Generator[int, None, int]:
    """A2C: one gradient step on each rollout of ``n_steps`` (SB3's ``A2C.train``)."""
    s, net = run.settings, run.agent.model
    rollout = Rollout(s["n_steps"], run.env, obs.device)
    timesteps = 0
    for step in range(rollouts_for(run.steps, s["n_steps"], run.env.num_envs)):
        obs, last_values, timesteps = collect(run, rollout, obs, timesteps)
        advantages, returns = advantages_and_returns(
            rollout.rewards, rollout.values, rollout.dones, last_values, s["gamma"], s["gae_lambda"]
        )
        batch = _flat(rollout, advantages, returns)
        head, values = run.agent.forward(batch["obs"])
        log_prob, entropy = net.log_prob_entropy(head, batch["actions"])
        parts = a2c_loss(
            log_prob, entropy, values, batch["advantages"], batch["returns"],
            s["ent_coef"], s["vf_coef"], s["normalize_advantage"],
        )  # fmt: skip
        gradient_step(run, parts.total, step)
        yield step
    return timesteps


def ppo(run: Run, obs: torch.Tensor) -> Generator[int, None, int]:
    """PPO: ``n_epochs`` shuffled passes of ``batch_size`` minibatches per rollout (SB3's ``PPO.train``)."""
    s, net = run.settings, run.agent.model
    rollout = Rollout(s["n_steps"], run.env, obs.device)
    timesteps, step = 0, 0
    for _ in range(rollouts_for(run.steps, s["n_steps"], run.env.num_envs)):
        obs, last_values, timesteps = collect(run, rollout, obs, timesteps)
        advantages, returns = advantages_and_returns(
            rollout.rewards, rollout.values, rollout.dones, last_values, s["gamma"], s["gae_lambda"]
        )
        batch = _flat(rollout, advantages, returns)
        size = batch["returns"].shape[0]
        for _epoch in range(s["n_epochs"]):
            order = torch.randperm(size, generator=run.generator, device=run.generator.device)
            stop = False
            for start in range(0, size, s["batch_size"]):
                index = order[start : start + s["batch_size"]].to(obs.device)
                head, values = run.agent.forward(batch["obs"][index])
                log_prob, entropy = net.log_prob_entropy(head, batch["actions"][index])
                parts, approx_kl = ppo_loss(
                    log_prob, batch["log_probs"][index], entropy, values, batch["values"][index],
                    batch["advantages"][index], batch["returns"][index], s["clip_range"],
                    s["clip_range_vf"], s["ent_coef"], s["vf_coef"], s["normalize_advantage"],
                )  # fmt: skip
                if s["target_kl"] is not None and approx_kl > 1.5 * s["target_kl"]:
                    stop = True  # SB3 stops the update before stepping on this minibatch
                    break
                gradient_step(run, parts.total, step)
                yield step
                step += 1
            if stop:
                break
    return timesteps


LOOPS = {"a2c": a2c, "ppo": ppo}
