"""Batched inner loops: all the tasks of a meta-batch trained at once (the stacked layout of
:func:`agents.functional.inner_loop`).

The parameters of ``B`` tasks are stacked along a leading dimension; one call of
``vmap(grad_and_value(loss))`` gives every task's loss and gradient, and the one
functional optimizer updates the stack, so every task keeps its own optimizer
state. Every task draws its minibatches from its own generator exactly as
:meth:`SupervisedAgent.learn` does, so a batched meta-batch agrees with the
per-task loop to floating-point tolerance (not bitwise: the arithmetic is grouped
differently). This module only adds the hook events around the loop.

It serves small models (MLPs, conv4): the stacked parameters, gradients and
optimizer state of all tasks live in memory at once. All tasks of a batch must
have data of the same shapes and the same loss (true of every registered
supervised family with a fixed number of shots).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from agents.curves import LearningCurve, curves_from_rows
from agents.functional import inner_loop
from agents.hooks import (
    BatchEndContext,
    BatchInnerStepContext,
    BatchStartContext,
    BatchStepEndContext,
    Hook,
    HookList,
)
from agents.task_data import loss_function, task_batch
from metaenvs.validation import positive_int


class BatchedInnerLoop:
    """The batched form of :meth:`SupervisedAgent.learn` (built by the agent; see the module docstring)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._models: list[torch.nn.Module] = []

    def task_models(self, seeds: Sequence[int], fresh_starts: bool = False) -> list[torch.nn.Module]:
        """One module per task where hooks write its start: the agent's current parameters, or with
        ``fresh_starts`` the agent's initialization for the task's seed (``agent.reset(seed)``)."""
        while len(self._models) < len(seeds):
            self._models.append(copy.deepcopy(self.agent.model))
        models = self._models[: len(seeds)]
        current = dict(self.agent.model.named_parameters())
        with torch.no_grad():
            for model, seed in zip(models, seeds, strict=True):
                source = self.agent.initial_parameters(seed) if fresh_starts else current
                for name, p in model.named_parameters():
                    p.copy_(source[name])
        return models

    def learn(
        self,
        tasks: Sequence[Any],
        steps: int,
        hooks: Sequence[Hook] = (),
        seeds: Sequence[int] | None = None,
        fresh_starts: bool = False,
    ) -> list[LearningCurve]:
        """Train every task of ``tasks`` for ``steps`` inner steps at once, firing batched hook events.

        Returns:
            One curve per task, as :meth:`SupervisedAgent.learn` returns it.
        """
        agent, steps = self.agent, positive_int("steps", steps)
        seeds = list(range(len(tasks))) if seeds is None else [int(s) for s in seeds]
        batch = task_batch(agent, tasks, steps, seeds, batched=True)
        hook = HookList(hooks)
        hook.attach(agent)
        agent.model.train()
        models = self.task_models(seeds, fresh_starts)
        hook.on_batch_start(BatchStartContext(agent, batch.tasks, models, seeds, steps))
        names = [n for n, _ in agent.model.named_parameters()]
        per_model = [dict(m.named_parameters()) for m in models]
        params = {n: torch.stack([p[n].detach() for p in per_model]) for n in names}
        state: dict[str, Any] = {}

        def on_step(step: int, loss: torch.Tensor, params: Any, grads: Any, state: Any) -> None:
            hook.on_batch_inner_step(
                BatchInnerStepContext(agent, batch.tasks, step, loss, params, grads, state)
            )

        def on_step_end(step: int, params: Any, state: Any) -> None:
            hook.on_batch_step_end(BatchStepEndContext(agent, batch.tasks, step, params, state))

        trajectory = inner_loop(
            loss_function(agent.model, batch.loss), params, batch, steps, agent.inner_optimizer,
            on_step=on_step, on_step_end=on_step_end, state=state,
        )  # fmt: skip
        curves = curves_from_rows(batch.tasks, trajectory.losses.double().T.tolist())
        self._keep_last(trajectory.params)
        hook.on_batch_end(
            BatchEndContext(agent, batch.tasks, trajectory.params, curves, trajectory.losses[-1])
        )
        return curves

    @torch.no_grad()
    def _keep_last(self, params: Mapping[str, torch.Tensor]) -> None:
        """Leave the last task's final parameters in the agent's model, as the per-task loop does."""
        for name, p in self.agent.model.named_parameters():
            p.copy_(params[name][-1])
