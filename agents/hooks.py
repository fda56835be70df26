"""The hook protocol between agents and meta-learners.

An agent's inner loop fixes the order of events; hooks only react:

1. ``on_task_start(TaskStartContext)``: before the first inner step. A meta-learner
   writes its current initialization into ``ctx.model`` here.
2. ``on_inner_step(InnerStepContext)``: after ``backward()`` and before
   ``optimizer.step()``, once per optimizer step, with the loss that was actually
   back-propagated, the live parameters and their gradients.
3. ``on_step_end(StepEndContext)``: right after ``optimizer.step()``, with the
   updated parameters (continual trajectory shifting moves them here).
4. ``on_task_end(TaskEndContext)``: after the last step, with the final
   parameters and the learning curve.

A batched agent (``SupervisedAgent(batched=True)``) trains the tasks of a
meta-batch at once and fires the batched form of each event instead
(``on_batch_start``, ``on_batch_inner_step``, ``on_batch_step_end``,
``on_batch_end``), with parameters, gradients and losses stacked along a leading
task dimension. A hook that does not override them receives the per-task events,
built from views into the stacked tensors, task after task at every step (so
per-task state must be keyed by task, not assume one task at a time; Leap and
CTS override the batched events with vectorised code).

This mirrors stable-baselines3's ``BaseCallback`` but adds the gradient-step event
SB3 lacks, and passes typed, frozen context objects instead of ``locals()``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from metaenvs.errors import IncompatibleAgentError

if TYPE_CHECKING:
    from agents.curves import LearningCurve
    from metaenvs.core import Task

CAPABILITIES = ("first_order", "differentiable", "batched", "stepwise")


@dataclass(frozen=True)
class Capabilities:
    """What an agent offers to meta-learners.

    Attributes:
        first_order: Fires ``on_inner_step`` with parameters and gradients.
        differentiable: Offers a functional inner loop that autograd can differentiate.
        batched: Can train the tasks of a meta-batch at once (``vmap``).
        stepwise: Offers ``learn_steps``, a generator that pauses after every inner step (so a driver
            advances several tasks in lockstep in one thread; otherwise it uses one thread per task).
    """

    first_order: bool = True
    differentiable: bool = False
    batched: bool = False
    stepwise: bool = False

    def missing(self, required: Sequence[str]) -> list[str]:
        """Names in ``required`` that this agent does not offer."""
        return [name for name in required if not getattr(self, name)]


@dataclass(frozen=True)
class TaskStartContext:
    """Passed to ``on_task_start``.

    Attributes:
        agent: The agent about to learn.
        task: The task.
        model: The module being trained (write the initialization here).
        seed: The seed this task is learned with.
        steps: Budget of the call to ``learn`` (in the agent's step unit).
    """

    agent: Any
    task: Task
    model: torch.nn.Module
    seed: int
    steps: int


@dataclass(frozen=True)
class InnerStepContext:
    """Passed to ``on_inner_step``: after backward, before the optimizer step.

    Attributes:
        agent: The learning agent.
        task: The task.
        step: Index of this optimizer step within the task (0-based).
        loss: The back-propagated loss (detached).
        params: Live parameters by name (do not modify in place).
        grads: Their gradients by name (``None`` entries are omitted).
        optimizer: The inner optimizer about to step (``None`` for a task of a batched agent).
        snapshot: ``params`` and ``grads`` are this step's own tensors, which nothing changes later (the
            functional inner loop), so a hook may keep them without copying; ``False`` for live
            module parameters that the optimizer updates in place.
    """

    agent: Any
    task: Task
    step: int
    loss: torch.Tensor
    params: Mapping[str, torch.Tensor]
    grads: Mapping[str, torch.Tensor]
    optimizer: torch.optim.Optimizer | None
    snapshot: bool = False


@dataclass(frozen=True)
class StepEndContext:
    """Passed to ``on_step_end``: right after the optimizer step.

    Attributes:
        agent: The learning agent.
        task: The task.
        step: Index of the optimizer step that just ran (0-based).
        params: Live, updated parameters by name (a hook may shift them in place).
        optimizer: The inner optimizer (its state, e.g. momentum, is not touched by shifts); ``None``
            for a task of a batched agent.
    """

    agent: Any
    task: Task
    step: int
    params: Mapping[str, torch.Tensor]
    optimizer: torch.optim.Optimizer | None


@dataclass(frozen=True)
class TaskEndContext:
    """Passed to ``on_task_end``.

    Attributes:
        agent: The agent that learned.
        task: The task.
        params: Final parameters by name.
        curve: The learning curve of the task.
        final_loss: Training loss at the final parameters (supervised agents) or ``None``.
    """

    agent: Any
    task: Task
    params: Mapping[str, torch.Tensor]
    curve: LearningCurve
    final_loss: torch.Tensor | None = None


def _row(tensors: Mapping[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    return {name: value[index] for name, value in tensors.items()}


@dataclass(frozen=True)
class BatchStartContext:
    """Passed to ``on_batch_start``: before the first inner step of a batched meta-batch.

    Attributes:
        agent: The batched agent.
        tasks: The tasks, in meta-batch order.
        models: One module per task: write each task's initialization here.
        seeds: Seed of every task.
        steps: Budget of every task (inner steps).
    """

    agent: Any
    tasks: Sequence[Task]
    models: Sequence[torch.nn.Module]
    seeds: Sequence[int]
    steps: int

    def per_task(self) -> list[TaskStartContext]:
        """The per-task contexts of this event."""
        return [
            TaskStartContext(self.agent, t, m, s, self.steps)
            for t, m, s in zip(self.tasks, self.models, self.seeds, strict=True)
        ]


@dataclass(frozen=True)
class BatchInnerStepContext:
    """Passed to ``on_batch_inner_step``: gradients of every task, before the optimizer step.

    Attributes:
        agent: The batched agent.
        tasks: The tasks.
        step: Index of the inner step (0-based).
        loss: Loss of every task, shape ``(B,)`` (detached).
        params: Stacked parameters by name, shape ``(B, *shape)`` (do not modify).
        grads: Stacked gradients by name.
        optimizer_state: The functional optimizer's stacked state (momentum, Adam moments).
    """

    agent: Any
    tasks: Sequence[Task]
    step: int
    loss: torch.Tensor
    params: Mapping[str, torch.Tensor]
    grads: Mapping[str, torch.Tensor]
    optimizer_state: Mapping[str, Any]

    def per_task(self) -> list[InnerStepContext]:
        """Per-task contexts with views into the stacked tensors (``optimizer`` is ``None``)."""
        return [
            InnerStepContext(
                self.agent, t, self.step, self.loss[i], _row(self.params, i), _row(self.grads, i), None
            )
            for i, t in enumerate(self.tasks)
        ]


@dataclass(frozen=True)
class BatchStepEndContext:
    """Passed to ``on_batch_step_end``: right after the optimizer step of every task.

    Attributes:
        agent: The batched agent.
        tasks: The tasks.
        step: Index of the inner step that just ran.
        params: Stacked, updated parameters (a hook may shift them in place).
        optimizer_state: The functional optimizer's stacked state.
    """

    agent: Any
    tasks: Sequence[Task]
    step: int
    params: Mapping[str, torch.Tensor]
    optimizer_state: Mapping[str, Any]

    def per_task(self) -> list[StepEndContext]:
        """Per-task contexts with views (in-place shifts reach the stacked tensors)."""
        return [
            StepEndContext(self.agent, t, self.step, _row(self.params, i), None)
            for i, t in enumerate(self.tasks)
        ]


@dataclass(frozen=True)
class BatchEndContext:
    """Passed to ``on_batch_end``.

    Attributes:
        agent: The batched agent.
        tasks: The tasks.
        params: Stacked final parameters.
        curves: Learning curve of every task.
        final_loss: Training loss of every task at its final parameters, shape ``(B,)``.
    """

    agent: Any
    tasks: Sequence[Task]
    params: Mapping[str, torch.Tensor]
    curves: Sequence[LearningCurve]
    final_loss: torch.Tensor

    def per_task(self) -> list[TaskEndContext]:
        """The per-task contexts of this event."""
        return [
            TaskEndContext(self.agent, t, _row(self.params, i), c, self.final_loss[i])
            for i, (t, c) in enumerate(zip(self.tasks, self.curves, strict=True))
        ]


class Hook:
    """Base class of everything that reacts to an agent's inner loop (override what you need)."""

    required_capabilities: tuple[str, ...] = ()

    def attach(self, agent: Any) -> None:
        """Check that ``agent`` offers what this hook needs; raise naming what is missing."""
        missing = agent.capabilities.missing(self.required_capabilities)
        if missing:
            raise IncompatibleAgentError(
                f"{type(self).__name__} needs an agent with {', '.join(missing)}, but "
                f"{type(agent).__name__} does not offer it. {self.alternatives_hint()}"
            )

    def alternatives_hint(self) -> str:
        return ""

    def on_task_start(self, ctx: TaskStartContext) -> None:
        """Before the first inner step."""

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        """After backward, before ``optimizer.step()``."""

    def on_step_end(self, ctx: StepEndContext) -> None:
        """Right after ``optimizer.step()``."""

    def on_task_end(self, ctx: TaskEndContext) -> None:
        """After the last inner step."""

    # Batched events: by default, the per-task events in task order (none are built for a per-task
    # event the hook does not handle: the per-step cost of a batched step stays the vmap's).
    def _handles(self, event: str) -> bool:
        return getattr(type(self), event) is not getattr(Hook, event)

    def on_batch_start(self, ctx: BatchStartContext) -> None:
        """Before the first inner step of a batched meta-batch."""
        if self._handles("on_task_start"):
            for task_ctx in ctx.per_task():
                self.on_task_start(task_ctx)

    def on_batch_inner_step(self, ctx: BatchInnerStepContext) -> None:
        """After every task's gradient, before the optimizer step."""
        if self._handles("on_inner_step"):
            for task_ctx in ctx.per_task():
                self.on_inner_step(task_ctx)

    def on_batch_step_end(self, ctx: BatchStepEndContext) -> None:
        """After every task's optimizer step."""
        if self._handles("on_step_end"):
            for task_ctx in ctx.per_task():
                self.on_step_end(task_ctx)

    def on_batch_end(self, ctx: BatchEndContext) -> None:
        """After the last inner step of every task."""
        if self._handles("on_task_end"):
            for task_ctx in ctx.per_task():
                self.on_task_end(task_ctx)


class HookList(Hook):
    """Fires a sequence of hooks in order."""

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self.hooks = list(hooks)

    def attach(self, agent: Any) -> None:
        for hook in self.hooks:
            hook.attach(agent)

    def on_task_start(self, ctx: TaskStartContext) -> None:
        for hook in self.hooks:
            hook.on_task_start(ctx)

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        for hook in self.hooks:
            hook.on_inner_step(ctx)

    def on_step_end(self, ctx: StepEndContext) -> None:
        for hook in self.hooks:
            hook.on_step_end(ctx)

    def on_task_end(self, ctx: TaskEndContext) -> None:
        for hook in self.hooks:
            hook.on_task_end(ctx)

    def on_batch_start(self, ctx: BatchStartContext) -> None:
        for hook in self.hooks:
            hook.on_batch_start(ctx)

    def on_batch_inner_step(self, ctx: BatchInnerStepContext) -> None:
        for hook in self.hooks:
            hook.on_batch_inner_step(ctx)

    def on_batch_step_end(self, ctx: BatchStepEndContext) -> None:
        for hook in self.hooks:
            hook.on_batch_step_end(ctx)

    def on_batch_end(self, ctx: BatchEndContext) -> None:
        for hook in self.hooks:
            hook.on_batch_end(ctx)


def drain(stepper: Generator[Any, None, Any]) -> Any:
    """Run a ``learn_steps`` generator to its end; its return value (the learning curve)."""
    while True:
        try:
            next(stepper)
        except StopIteration as done:
            return done.value


def named_grads(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Gradients of ``params`` by name, omitting parameters without one."""
    return {name: p.grad for name, p in params.items() if p.grad is not None}
