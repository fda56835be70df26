"""Cheap RL families: classic-control envs with varied physics, and lists of Gymnasium env ids."""

from metaenvs.control.gym_list import GymEnvList
from metaenvs.control.physics import CartPolePhysics, PendulumPhysics, PhysicsVaried

__all__ = ["CartPolePhysics", "GymEnvList", "PendulumPhysics", "PhysicsVaried"]
