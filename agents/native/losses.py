"""The losses and returns of the native actor-critic, as SB3 defines them (vectorised over envs).

Each function is the formula of SB3's ``A2C.train`` / ``PPO.train`` / ``RolloutBuffer`` written
once over whole tensors; ``tests/test_native_actor_critic.py`` checks them against SB3's own code on
fixed batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParts:
    """A loss and its parts (detached parts; ``total`` is the tensor to back-propagate)."""

    total: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor


def advantages_and_returns(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(lambda) advantages and lambda-returns of a ``(T, N)`` rollout (SB3's ``RolloutBuffer``).

    Args:
        rewards: Reward of each step (a truncated episode's last reward already carries
            ``gamma * V(final observation)``, as SB3 bootstraps timeouts).
        values: ``V(s_t)`` under the rollout's parameters.
        dones: Whether the episode ended at step ``t`` (terminated or truncated).
        last_values: ``V`` of the observation after the last step, ``(N,)``.
        gamma: Discount.
        gae_lambda: GAE's lambda (1: the n-step returns of A2C).

    Returns:
        ``(advantages, returns)``, each ``(T, N)``; ``returns = advantages + values``.
    """
    advantages = torch.zeros_like(rewards)
    next_values, running = last_values, torch.zeros_like(last_values)
    not_done = 1.0 - dones.to(rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_values * not_done[t] - values[t]
        running = delta + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
        next_values = values[t]
    return advantages, advantages + values


def a2c_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    ent_coef: float,
    vf_coef: float,
    normalize_advantage: bool = False,
) -> LossParts:
    """SB3's A2C loss: ``-mean(A log pi) - ent_coef mean(H) + vf_coef mse(R, V)`` (flat batches)."""
    if normalize_advantage:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy = -(advantages * log_prob).mean()
    value = F.mse_loss(returns, values)
    entropy_loss = -entropy.mean()
    total = policy + ent_coef * entropy_loss + vf_coef * value
    return LossParts(total, policy.detach(), value.detach(), entropy_loss.detach())


def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    clip_range: float,
    clip_range_vf: float | None,
    ent_coef: float,
    vf_coef: float,
    normalize_advantage: bool = True,
) -> tuple[LossParts, torch.Tensor]:
    """SB3's PPO loss on one minibatch, and the approximate KL SB3 stops an epoch on.

    The clipped surrogate with per-minibatch advantage normalisation (when the minibatch has more than
    one sample), optionally clipped values, the mean entropy bonus; the KL estimate is
    ``mean((r - 1) - log r)`` (Schulman's k3, SB3's ``approx_kl_div``).
    """
    if normalize_advantage and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    surrogate = torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range))
    policy = -surrogate.mean()
    if clip_range_vf is not None:
        values = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    value = F.mse_loss(returns, values)
    entropy_loss = -entropy.mean()
    total = policy + ent_coef * entropy_loss + vf_coef * value
    with torch.no_grad():
        approx_kl = torch.mean((ratio - 1) - log_ratio)
    return LossParts(total, policy.detach(), value.detach(), entropy_loss.detach()), approx_kl
