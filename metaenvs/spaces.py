"""When one policy can serve tasks with different Gymnasium spaces, and what it must adapt.

One rule for the whole suite (agents, families and the conformance check read it here): tasks may
differ in the size of a flat ``Box`` observation (the agent then gives each task fresh input layers:
``adapt_input_layer``) and in their number of ``Discrete`` actions (fresh action heads:
``adapt_action_head``); every other difference means no policy can be shared.
"""

from __future__ import annotations

import gymnasium as gym

from metaenvs.errors import IncompatibleAgentError


def is_flat_box(space: gym.Space) -> bool:
    """Whether ``space`` is a one-dimensional ``Box`` (a vector observation)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def is_discrete(space: gym.Space) -> bool:
    """Whether ``space`` is ``Discrete``."""
    return isinstance(space, gym.spaces.Discrete)


def adaptation_needed(
    a: tuple[gym.Space, gym.Space], b: tuple[gym.Space, gym.Space], names: tuple[str, str] = ("a", "b")
) -> dict[str, bool]:
    """The agent flags under which one policy serves tasks with spaces ``a`` and ``b``.

    Args:
        a: ``(observation_space, action_space)`` of one task.
        b: The same of another task.
        names: The tasks' names, for the error message.

    Returns:
        ``{"adapt_input_layer": True}`` and / or ``{"adapt_action_head": True}`` where needed; empty
        when the spaces are equal.

    Raises:
        IncompatibleAgentError: Naming both tasks and their spaces, when no adaptation covers them.
    """
    (obs_a, act_a), (obs_b, act_b) = a, b
    flags = {}
    if obs_a != obs_b:
        if not (is_flat_box(obs_a) and is_flat_box(obs_b)):
            raise IncompatibleAgentError(
                f"Tasks {names[0]} ({obs_a}) and {names[1]} ({obs_b}) have observation spaces no policy can "
                "share: only flat Box observations of different sizes can be adapted."
            )
        flags["adapt_input_layer"] = True
    if act_a != act_b:
        if not (is_discrete(act_a) and is_discrete(act_b)):
            raise IncompatibleAgentError(
                f"Tasks {names[0]} ({act_a}) and {names[1]} ({act_b}) have action spaces no policy can "
                "share: only Discrete action spaces of different sizes can be adapted."
            )
        flags["adapt_action_head"] = True
    return flags
