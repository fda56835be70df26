"""Continual trajectory shifting (Shin, Lee, Hwang & Yang, ICML 2021).

The tasks of a meta-batch run in lockstep (see :mod:`baselines.lockstep`). After
inner step ``k`` of every task, CTS takes one meta-update of the initialization
along a meta-gradient computed from the tasks' current parameters (Reptile's
``phi - mean_t theta_t^k`` by default; pass ``direction`` for another), and then
*shifts* every task's parameters by the same ``Delta = phi_new - phi_old``, so each
task continues as if it had started from the new initialization. A meta step of
the driver is one *reset*: tasks restart from the initialization every ``K``
inner steps, so the horizon behind each meta-gradient grows from 1 to ``K``.

What a shift touches:

* only the meta-learned parameters (``params``); task-specific heads and any
  parameter outside the initialization are never shifted;
* optimizer state is left alone: momentum / Adam moments are velocities and
  statistics of past gradients, which a translation of the parameters does not
  change (the paper's code shifts parameters only, too).

``accurate=True`` is the slow reference: instead of shifting, every task is
re-trained for ``k`` steps from the new initialization (same seed and batches),
its optimizer state copied over, and the distance between the shifted and the
re-trained parameters is recorded as the approximation error ``epsilon_k``
(mean over the tasks of the global L2 distance).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from agents.hooks import (
    BatchStartContext,
    BatchStepEndContext,
    Hook,
    InnerStepContext,
    StepEndContext,
    TaskStartContext,
)
from agents.parameters import copy_into
from baselines.base import MetaLearner
from metaenvs.errors import IncompatibleAgentError

Direction = Callable[
    [Mapping[str, torch.Tensor], Sequence[Mapping[str, torch.Tensor]]], dict[str, torch.Tensor]
]


def reptile_direction(
    init: Mapping[str, torch.Tensor], tasks: Sequence[Mapping[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """``init - mean_t theta_t``: Reptile's meta-gradient from the tasks' current parameters."""
    names = list(init)
    mean = torch._foreach_mul([tasks[0][k].detach() for k in names], 1.0 / len(tasks))
    for task in tasks[1:]:
        torch._foreach_add_(mean, [task[k].detach() for k in names], alpha=1.0 / len(tasks))
    return dict(zip(names, torch._foreach_sub([init[k].detach() for k in names], mean), strict=True))


class _Slot:
    """What CTS remembers of one running task."""

    def __init__(self, ctx: TaskStartContext) -> None:
        self.agent, self.task, self.seed = ctx.agent, ctx.task, ctx.seed
        self.start = {k: v.detach().clone() for k, v in ctx.model.named_parameters()}
        self.params: Mapping[str, torch.Tensor] = {}
        self.optimizer: torch.optim.Optimizer | None = None


class _OptimizerCapture(Hook):
    def on_inner_step(self, ctx: InnerStepContext) -> None:
        self.optimizer = ctx.optimizer


class CTS(MetaLearner):
    """Continual trajectory shifting as a callback.

    Args:
        meta_lr: Meta step size of every per-step meta-update.
        meta_optimizer: ``"sgd"`` (default), ``"momentum"`` or ``"adam"``.
        direction: Meta-gradient from ``(init, [task params])``; default :func:`reptile_direction`.
        accurate: Re-train from each new initialization instead of shifting (slow; measures epsilon).
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "cts"
    lockstep: ClassVar[bool] = True

    def __init__(
        self,
        meta_lr: float = 0.1,
        meta_optimizer: str = "sgd",
        direction: Direction | None = None,
        accurate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.direction = direction or reptile_direction
        self.accurate = bool(accurate)
        self.batch_size = 1
        self.epsilon: list[list[float]] = []  # per meta step: epsilon_k for k = 1..K (accurate only)
        self._scratch: Any = None

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "accurate": self.accurate,
            "direction": getattr(self.direction, "__name__", "custom"),
        }

    def attach(self, agent: Any) -> None:
        super().attach(agent)
        if self.accurate and getattr(agent, "step_unit", "inner_steps") != "inner_steps":
            raise IncompatibleAgentError(
                "CTS(accurate=True) re-trains tasks by inner steps; it supports agents that count inner "
                f"steps (SupervisedAgent), not {type(agent).__name__}. Use CTS(accurate=False)."
            )

    def begin_meta_batch(self, size: int) -> None:
        self.batch_size = int(size)

    def reset_accumulators(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._arrived = 0
        self._round: list[float] = []

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        self._slots[id(ctx.agent)] = _Slot(ctx)

    def on_step_end(self, ctx: StepEndContext) -> None:
        slot = self._slots[id(ctx.agent)]
        slot.params, slot.optimizer = ctx.params, ctx.optimizer
        self._arrived += 1
        if self._arrived == self.batch_size:
            self._arrived = 0
            self._meta_step_and_shift(ctx.step + 1)

    def supports_batched(self) -> bool:
        """Shifting runs batched; ``accurate=True`` re-trains task by task, so it does not."""
        return not self.accurate

    # ----- batched agents: every task's step k arrives at once ------------------------------------
    def on_batch_start(self, ctx: BatchStartContext) -> None:
        if self.accurate:
            raise IncompatibleAgentError(
                "CTS(accurate=True) re-trains every task one by one; run it with "
                "SupervisedAgent(batched=False)."
            )
        for task_ctx in ctx.per_task():
            MetaLearner.on_task_start(self, task_ctx)

    def on_batch_step_end(self, ctx: BatchStepEndContext) -> None:
        names = list(self.init)
        shift = self.step_and_shift([{n: ctx.params[n][i] for n in names} for i in range(len(ctx.tasks))])
        with torch.no_grad():
            torch._foreach_add_([ctx.params[n] for n in names], shift)  # broadcast over the tasks

    def step_and_shift(self, task_params: Sequence[Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
        """One per-step meta-update from every task's current parameters; the shift it made.

        The shift is a list in the order of :attr:`init`'s names (the local lockstep, the
        batched agent and the Ray actors all call this).
        """
        names = list(self.init)
        before = torch._foreach_mul([self.init[n].detach() for n in names], 1.0)
        self.last_stats = self.apply_meta_gradient(self.direction(self.init, task_params))
        return torch._foreach_sub([self.init[n].detach() for n in names], before)

    def _meta_step_and_shift(self, k: int) -> None:
        slots = list(self._slots.values())
        names = list(self.init)
        shift = self.step_and_shift([s.params for s in slots])
        if self.accurate:
            self._round.append(self._retrain(slots, k, dict(zip(names, shift, strict=True))))
            return
        with torch.no_grad():
            for slot in slots:  # one fused call per task
                torch._foreach_add_([slot.params[n] for n in names], shift)

    def _retrain(self, slots: list[_Slot], k: int, delta: Mapping[str, torch.Tensor]) -> float:
        """Re-train every task ``k`` steps from the new initialization; return mean epsilon_k."""
        if self._scratch is None:
            self._scratch = copy.deepcopy(slots[0].agent)
        errors = []
        for slot in slots:
            copy_into(self._scratch.model, {**slot.start, **self.initialization()})
            capture = _OptimizerCapture()
            self._scratch.learn(slot.task, k, hooks=[capture], seed=slot.seed)
            fresh = dict(self._scratch.model.named_parameters())
            squared = sum(
                float(((slot.params[n].detach() + delta[n] - fresh[n].detach()).double() ** 2).sum())
                for n in self.init
            )
            errors.append(squared**0.5)
            with torch.no_grad():
                for name, value in fresh.items():
                    slot.params[name].copy_(value)
            if slot.optimizer is not None:
                slot.optimizer.load_state_dict(capture.optimizer.state_dict())
        return sum(errors) / len(errors)

    def meta_update(self) -> dict[str, float]:
        """End of a reset period: the per-step updates are already applied; record epsilon."""
        if self.accurate:
            self.epsilon.append(list(self._round))
        stats = dict(getattr(self, "last_stats", None) or self._idle_stats())
        self.meta_step += 1
        self.reset_accumulators()
        return stats
