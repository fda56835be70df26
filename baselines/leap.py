"""Leap (Flennerhag, Moreno, Lawrence & Damianou, ICLR 2019): shorten the learning trajectory.

At inner step ``i`` the agent reports ``theta_i``, ``L_i`` and ``g_i`` (before the
optimizer step). With the next report ``theta_{i+1}``, ``L_{i+1}``, the increment
of the meta-gradient is::

    (theta_i - theta_{i+1}) - dL * g_i,        dL = L_{i+1} - L_i

* ``stabilizer=True`` replaces ``dL`` by ``-|dL|`` (the paper's stabilised form);
* ``norm=True`` (the d1 "length" metric) divides the increment by
  ``sqrt(dL**2 + ||theta_{i+1} - theta_i||**2)``, one global norm over all
  meta-learned parameters; ``norm=False`` is the d2 "energy" metric;
* ``loss_in_distance=False`` drops the loss term (the trajectory in parameter space only).

K inner steps give K - 1 increments (the last step's successor is never seen, as in
the authors' code). Increments are summed along each task's trajectory and
averaged over the tasks of a meta-batch; any torch optimizer then applies the
average as the gradient of the initialization.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from agents.hooks import InnerStepContext, TaskStartContext
from baselines.base import MetaLearner


class Leap(MetaLearner):
    """Leap as a callback.

    Args:
        norm: ``True`` for the d1 (length) metric, ``False`` for d2 (energy).
        stabilizer: Use ``-|dL|`` in place of ``dL``.
        loss_in_distance: Include the loss term in the trajectory.
        meta_lr: Meta learning rate.
        meta_optimizer: ``"sgd"``, ``"momentum"`` or ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner` (``params`` selects a subset).
    """

    name: ClassVar[str] = "leap"

    def __init__(
        self,
        norm: bool = True,
        stabilizer: bool = True,
        loss_in_distance: bool = True,
        meta_lr: float = 0.1,
        meta_optimizer: str = "sgd",
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.norm, self.stabilizer, self.loss_in_distance = (
            bool(norm),
            bool(stabilizer),
            bool(loss_in_distance),
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "norm": self.norm,
            "stabilizer": self.stabilizer,
            "loss_in_distance": self.loss_in_distance,
        }

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0
        self._previous: tuple[dict[str, torch.Tensor], float, dict[str, torch.Tensor]] | None = None

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        self._previous = None
        self._tasks += 1

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        params = {k: ctx.params[k].detach().clone() for k in self.init}
        grads = {
            k: ctx.grads[k].detach().clone() if k in ctx.grads else torch.zeros_like(params[k])
            for k in self.init
        }
        loss = float(ctx.loss)
        if self._previous is not None:
            self._add_increment(*self._previous, params, loss)
        self._previous = (params, loss, grads)

    def _add_increment(
        self,
        theta: dict[str, torch.Tensor],
        loss: float,
        grad: dict[str, torch.Tensor],
        theta_next: dict[str, torch.Tensor],
        loss_next: float,
    ) -> None:
        delta_loss = loss_next - loss
        if self.stabilizer:
            delta_loss = -abs(delta_loss)
        if not self.loss_in_distance:
            delta_loss = 0.0
        scale = 1.0
        if self.norm:
            squared = sum(float(((theta_next[k] - theta[k]).double() ** 2).sum()) for k in theta)
            length = (delta_loss**2 + squared) ** 0.5
            scale = 1.0 / length if length > 0 else 0.0
        for k in theta:
            increment = ((theta[k] - theta_next[k]) - delta_loss * grad[k]) * scale
            self._sum[k] = self._sum[k] + increment if k in self._sum else increment

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._tasks == 0 or not self._sum:
            return None
        return {k: v / self._tasks for k, v in self._sum.items()}
