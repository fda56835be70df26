"""When one policy can serve tasks with different Gymnasium spaces, and what it must adapt.

One rule for the whole suite (agents, families and the conformance check read it here): tasks may
differ in the size of a flat ``Box`` observation (the agent then gives each task fresh input layers:
``adapt_input_layer``) and in their number of ``Discrete`` actions (fresh action heads:
``adapt_action_head``); every other difference means no policy can be shared.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym

from metaenvs.errors import IncompatibleAgentError


def is_flat_box(space: gym.Space) -> bool:
    """Whether ``space`` is a one-dimensional ``Box`` (a vector observation)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def is_discrete(space: gym.Space) -> bool:
    """Whether ``space`` is ``Discrete``."""
    return isinstance(space, gym.spaces.Discrete)


RULES = (
    ("observation", is_flat_box, "adapt_input_layer", "flat Box observations"),
    ("action", is_discrete, "adapt_action_head", "Discrete action spaces"),
)
"""Per space (observation, action): what may differ, the agent flag that adapts to it, its name."""


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
    flags = {}
    for (kind, ok, flag, what), x, y in zip(RULES, a, b, strict=True):
        if x == y:
            continue
        if not (ok(x) and ok(y)):
            raise IncompatibleAgentError(
                f"Tasks {names[0]} ({x}) and {names[1]} ({y}) have {kind} spaces no policy can share: only "
                f"{what} of different sizes can be adapted."
            )
        flags[flag] = True
    return flags


def adaptation_for(spaces: Mapping[str, tuple[gym.Space, gym.Space]]) -> dict[str, bool]:
    """The agent flags under which one policy serves every task of ``spaces`` (task name -> its
    ``(observation_space, action_space)``), each compared with the first; see :func:`adaptation_needed`."""
    (first, reference), flags = next(iter(spaces.items())), {}
    for name, pair in spaces.items():
        flags.update(adaptation_needed(reference, pair, (first, name)))
    return flags
