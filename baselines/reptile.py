"""Reptile (Nichol, Achiam & Schulman 2018) and the no-meta-learning baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from agents.hooks import TaskEndContext
from baselines.base import MetaLearner


class Scratch(MetaLearner):
    """No meta-learning: every task starts from the same initialization, which never changes."""

    name: ClassVar[str] = "scratch"
    updates_initialization: ClassVar[bool] = False


class Reptile(MetaLearner):
    """Reptile: move the initialization towards the tasks' adapted parameters.

    The meta-gradient is ``init - mean_i(phi_i)`` over the meta-batch, so a plain SGD
    meta-step of size ``eps`` gives ``init + eps * mean_i(phi_i - init)``. By default
    ``eps`` is annealed linearly from ``meta_lr`` to ``meta_lr_final`` over the run,
    as in the authors' code (``frac_done = step / meta_steps``).

    Args:
        meta_lr: Initial meta step size (the paper's ``epsilon``; 1.0 for sinusoid and Omniglot).
        schedule: ``"linear"`` (default) or ``"constant"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "reptile"
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_count")

    def __init__(self, meta_lr: float = 1.0, schedule: str = "linear", **kwargs: Any) -> None:
        super().__init__(meta_lr=meta_lr, schedule=schedule, **kwargs)

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._count = 0

    def on_task_end(self, ctx: TaskEndContext) -> None:
        for name, init in self.init.items():
            delta = ctx.params[name].detach() - init
            self._sum[name] = self._sum[name] + delta if name in self._sum else delta.clone()
        self._count += 1

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._count == 0:
            return None
        return {name: -total / self._count for name, total in self._sum.items()}
