"""The base of the meta-learners that differentiate learning (MAML, the adjoint, iMAML, A-MAML).

They talk to the agent only through its declared functional surface (``Capabilities.differentiable``):
``agent.task_batch(tasks, steps, seeds, batched)``, ``agent.loss_function(loss)``,
``agent.inner_optimizer`` and ``agent.model``'s parameter names, and run the one functional inner
loop of :mod:`agents.functional`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from agents.curves import LearningCurve, curves_from_rows
from agents.functional import OPTIMIZERS, Trajectory, gradient_of, inner_loop
from agents.task_data import Params, TaskBatch
from baselines.base import MetaLearner
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.validation import available_memory

FIRST_ORDER_ALTERNATIVES = "leap, reptile, fomaml, fomamlpp, cts"
INNER_OPTIMIZERS = OPTIMIZERS


class SecondOrderLearner(MetaLearner, ABC):
    """Base of meta-learners that differentiate learning: they run the one functional inner loop.

    A subclass writes its per-task computation once, in :meth:`task_gradients`, for a
    :class:`~agents.task_data.TaskBatch` in either layout; :meth:`learn_task` (one task) and
    :meth:`learn_batch` (a stacked meta-batch) both call it through :meth:`run`.
    """

    kind: ClassVar[str] = "trajectory"
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_tasks")
    required_capabilities: tuple[str, ...] = ("differentiable",)
    inner_optimizers: ClassVar[tuple[str, ...]] = ("sgd",)
    """The inner optimizers the algorithm's meta-gradient is defined for (the adjoint, iMAML and A-MAML
    assume plain gradient descent; MAML differentiates through any of them)."""

    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        """Refuse an agent whose inner optimizer this algorithm cannot differentiate through, instead
        of meta-training through another inner loop than the one the agent (and its protocol) runs."""
        used = getattr(agent, "optimizer_name", "sgd")
        if used not in self.inner_optimizers:
            raise IncompatibleAgentError(
                f"{type(self).__name__} is defined for inner {'/'.join(self.inner_optimizers)} steps, but "
                f"the agent trains with {used!r} (its protocol's recipe); its meta-gradient would be that of "
                "another inner loop than the one evaluated. Use maml, which differentiates through "
                "sgd, momentum and adam, or a first-order learner (fomaml, reptile, leap)."
            )
        super().initialize(agent, total_meta_steps)

    def alternatives_hint(self) -> str:
        return f"Use a first-order meta-learner instead: {FIRST_ORDER_ALTERNATIVES}."

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0

    def add_task_gradient(self, grads: Params) -> None:
        for k in self.init:
            g = grads[k].detach()
            self._sum[k] = self._sum[k] + g if k in self._sum else g.clone()
        self._tasks += 1

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        return None if self._tasks == 0 else {k: v / self._tasks for k, v in self._sum.items()}

    graph_factor: ClassVar[int] = 1
    """Copies of the parameters kept per stored state (MAML's autograd graph keeps several)."""

    def stored_states(self, agent: Any, steps: int) -> int:
        """How many parameter-sized states one task's meta-gradient keeps in memory at ``steps``."""
        return steps + 1

    def check_memory(self, agent: Any, steps: int, tasks_at_once: int = 1) -> None:
        """Refuse, before anything runs, a budget whose stored states would not fit in memory.

        Raises:
            InvalidArgumentError: Naming the estimate, the memory available and what to change.
        """
        n_params = sum(p.numel() for p in agent.model.parameters())
        element = next(agent.model.parameters()).element_size()
        need = self.stored_states(agent, steps) * self.graph_factor * n_params * element * tasks_at_once
        have = available_memory()
        if have is not None and need > 0.5 * have:
            raise InvalidArgumentError(
                f"{type(self).__name__} with {steps} inner steps would keep about {need / 2**30:.1f} GiB of "
                f"states ({self.stored_states(agent, steps)} x {n_params} parameters x {tasks_at_once} "
                f"task(s)), more than half the {have / 2**30:.1f} GiB available. Lower --inner-steps, or use "
                "an algorithm whose memory does not grow with the steps (adjoint with checkpoint=True, "
                "imaml, or a first-order one: fomaml, reptile, leap)."
            )

    def start_params(self, agent: Any, batch: TaskBatch | None = None) -> Params:
        """Every task's start: the meta-learned part from :attr:`init`, the rest by the one rule all
        learners follow (:attr:`~baselines.base.MetaLearner.starts_tasks_fresh`): with ``params=[...]``
        the agent's initialization for the task's seed, else the agent's current parameters.

        Detached copies; stacked along a leading task dimension if ``batch`` is.
        """
        meta = {k: v.detach() for k, v in self.init.items()}
        if batch is not None and self.starts_tasks_fresh:
            starts = [{**agent.initial_parameters(seed), **meta} for seed in batch.seeds]
        else:
            current = {k: v.detach() for k, v in agent.model.named_parameters()}
            starts = [{**current, **meta}]
        if batch is not None and batch.batched:
            return {
                k: torch.stack([starts[i % len(starts)][k] for i in range(batch.size)]) for k in starts[0]
            }
        return {k: v.clone() for k, v in starts[0].items()}

    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        """Run one task's inner loop, accumulate its meta-gradient, and return its curve."""
        return self.run(agent, [task], steps, [seed], batched=False)[0]

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """Every task of a meta-batch at once: the stacked layout of the same computation."""
        return self.run(agent, tasks, steps, seeds, batched=True)

    def run(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int], batched: bool) -> list:
        """The meta-gradients of ``tasks`` (one, or a stack), accumulated in task order; their curves."""
        batch = agent.task_batch(list(tasks), steps, list(seeds), batched)
        grads, curves = self.task_gradients(agent, batch, steps)
        for i in range(batch.size):
            self.add_task_gradient({k: grads[k][i] if batched else grads[k] for k in self.init})
        return curves

    @abstractmethod
    def task_gradients(self, agent: Any, batch: TaskBatch, steps: int) -> tuple[Params, list[LearningCurve]]:
        """The meta-gradient of every task of ``batch`` (stacked if it is) and the tasks' curves."""

    def inner_loop(self, agent: Any, batch: TaskBatch, start: Params, steps: int, **kw: Any) -> Trajectory:
        """The agent's inner loop from ``start`` (the one functional loop, the agent's optimizer)."""
        f = agent.loss_function(batch.loss)
        return inner_loop(f, start, batch, steps, agent.inner_optimizer, **kw)

    def query_gradient(self, agent: Any, batch: TaskBatch, at: Params) -> Params:
        """``grad L_query`` at ``at`` (per task if stacked)."""
        return gradient_of(agent.loss_function(batch.loss), batch.batched)(at, batch.x_query, batch.y_query)


def curves_of(batch: TaskBatch, losses: torch.Tensor) -> list[LearningCurve]:
    """Per-task learning curves from a trajectory's losses ``(steps + 1,)`` or ``(steps + 1, B)``."""
    rows = losses.detach().double().reshape(losses.shape[0], -1).T.tolist()
    return curves_from_rows(batch.tasks, rows)
