"""Agents: learners that train one task from a given initialization."""

from __future__ import annotations

from typing import Any

from agents.curves import LearningCurve
from agents.hooks import Capabilities, Hook, InnerStepContext, TaskEndContext, TaskStartContext
from agents.supervised import SupervisedAgent


def make_agent(dist: Any, seed: int = 0, **overrides: Any) -> Any:
    """Build the agent a distribution's protocol prescribes (supervised or actor-critic)."""
    if dist.kind == "rl":
        if dist.protocol.agent.get("type") == "native_actor_critic":
            from agents.native import NativeActorCritic

            return NativeActorCritic.for_distribution(dist, seed=seed, **overrides)
        from agents.actor_critic import ActorCritic

        return ActorCritic.for_distribution(dist, seed=seed, **overrides)
    return SupervisedAgent.for_distribution(dist, seed=seed, **overrides)


def __getattr__(name: str) -> Any:  # ActorCritic imports SB3; load it on first use.
    if name == "ActorCritic":
        from agents.actor_critic import ActorCritic

        return ActorCritic
    if name == "NativeActorCritic":
        from agents.native import NativeActorCritic

        return NativeActorCritic
    raise AttributeError(name)


__all__ = [
    "ActorCritic",
    "Capabilities",
    "Hook",
    "InnerStepContext",
    "LearningCurve",
    "NativeActorCritic",
    "SupervisedAgent",
    "TaskEndContext",
    "TaskStartContext",
    "make_agent",
]
