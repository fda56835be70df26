"""How the tasks of a meta-batch run: one after another in this process, or on a Ray cluster.

Both executors run every task from *reset* accumulators and hand back the
meta-learner's :meth:`~baselines.base.MetaLearner.contribution`; the driver then
merges the contributions in task order. The arithmetic is therefore the same
wherever a task ran, which is what makes a Ray run give bitwise the same
initialization as a local one on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.curves import LearningCurve
from baselines.base import MetaLearner


def learn_one(
    agent: Any,
    learner: MetaLearner,
    task: Any,
    steps: int,
    seed: int,
    fresh_accumulators: bool = True,
    observers: Sequence[Any] = (),
) -> LearningCurve:
    """One task (from reset accumulators unless told otherwise): the learner's functional loop, or the
    agent's hooked ``learn`` from a fresh start where the learner asks for one
    (:attr:`~baselines.base.MetaLearner.starts_tasks_fresh`). ``observers`` are hooks that only watch
    (progress): they see the agent's events after the learner, and ``task_done()`` after each task."""
    if fresh_accumulators:
        learner.reset_accumulators()
    if learner.kind == "trajectory":
        curve = learner.learn_task(agent, task, steps, seed)
    else:
        if learner.starts_tasks_fresh:
            agent.reset(seed)
        curve = agent.learn(task, steps, hooks=[learner, *observers], seed=seed)
    for observer in observers:
        observer.task_done()
    return curve


def merge_all(learner: MetaLearner, contributions: Sequence[dict[str, Any]]) -> None:
    """Replace the learner's accumulators by the sum of ``contributions``, added in order."""
    learner.reset_accumulators()
    for contribution in contributions:
        learner.merge(contribution)


def declares_contributions(learner: MetaLearner) -> bool:
    """Whether the learner names its accumulators, or has none (does not override ``reset_accumulators``).

    A subclass written before :attr:`~baselines.base.MetaLearner.accumulators` existed keeps
    its accumulators to itself: it runs locally in place, and on Ray it is refused.
    """
    return bool(learner.accumulators) or type(learner).reset_accumulators is MetaLearner.reset_accumulators


def run_local(
    agent: Any,
    tasks: Sequence[Any],
    steps: int,
    learner: MetaLearner,
    seeds: Sequence[int],
    observers: Sequence[Any] = (),
) -> list[LearningCurve]:
    """The meta-batch task after task in this process (``observers``: see :func:`learn_one`)."""
    if not declares_contributions(learner):
        return [
            learn_one(agent, learner, task, steps, seed, fresh_accumulators=False, observers=observers)
            for task, seed in zip(tasks, seeds, strict=True)
        ]
    curves, contributions = [], []
    for task, seed in zip(tasks, seeds, strict=True):
        curves.append(learn_one(agent, learner, task, steps, seed, observers=observers))
        contributions.append(learner.contribution())
    merge_all(learner, contributions)
    return curves
