"""The native actor-critic: A2C and PPO in plain PyTorch that own their training loop."""

from agents.native.agent import NativeActorCritic

__all__ = ["NativeActorCritic"]
