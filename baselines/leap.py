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

from agents.hooks import (
    BatchEndContext,
    BatchInnerStepContext,
    BatchStartContext,
    InnerStepContext,
    TaskEndContext,
    TaskStartContext,
)
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
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_tasks")

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
        self._sum: torch.Tensor | None = None
        self._tasks = 0

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        size, ref = sum(p.numel() for p in self.init.values()), next(iter(self.init.values()))
        # Rows of theta_i and g_i, written with one torch.cat(out=...) each per step and turned
        # into increments in one vectorised flush every `chunk` steps.
        shape = (self.chunk + 1, size)
        if (
            getattr(self, "_theta", None) is None
            or self._theta.shape != shape
            or self._theta.dtype != ref.dtype
        ):
            self._theta = torch.empty(shape, dtype=ref.dtype, device=ref.device)
            self._grad = torch.empty_like(self._theta)
            self._work = torch.empty_like(self._theta)
        self._losses: list[float] = []
        self._tasks += 1

    chunk: ClassVar[int] = 32

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        row = len(self._losses)
        torch.cat([ctx.params[k].detach().reshape(-1) for k in self.init], out=self._theta[row])
        grads = ctx.grads
        flat = [
            (grads[k] if k in grads else torch.zeros_like(ctx.params[k])).detach().reshape(-1)
            for k in self.init
        ]
        torch.cat(flat, out=self._grad[row])
        self._losses.append(float(ctx.loss))
        if row == self.chunk:
            self._flush()

    def on_task_end(self, ctx: TaskEndContext) -> None:
        self._flush()

    def _flush(self) -> None:
        """Add the increments of every consecutive pair of stored steps; keep the last step."""
        n = len(self._losses)
        if n >= 2:
            theta, grad = self._theta[:n], self._grad[:n]
            increment = torch.sub(theta[:-1], theta[1:], out=self._work[: n - 1])  # theta_i - theta_{i+1}
            losses = torch.tensor(self._losses, dtype=torch.float64)
            self._add_increments(increment, losses[1:] - losses[:-1], grad[:-1])
            self._theta[0], self._grad[0] = self._theta[n - 1], self._grad[n - 1]
        self._losses = self._losses[-1:]

    # ----- batched agents: the same increments, vectorised over the tasks -----------------------
    def on_batch_start(self, ctx: BatchStartContext) -> None:
        for task_ctx in ctx.per_task():
            MetaLearner.on_task_start(self, task_ctx)
        self._previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._tasks += len(ctx.tasks)

    def on_batch_inner_step(self, ctx: BatchInnerStepContext) -> None:
        rows = len(ctx.tasks)
        theta = torch.cat([ctx.params[k].detach().reshape(rows, -1) for k in self.init], dim=1)
        grad = torch.cat([ctx.grads[k].detach().reshape(rows, -1) for k in self.init], dim=1)
        loss = ctx.loss.detach().double()
        if self._previous is not None:
            self._add_batch_increment(*self._previous, theta, loss)
        self._previous = (theta, grad, loss)

    def on_batch_end(self, ctx: BatchEndContext) -> None:
        self._previous = None

    def _add_batch_increment(
        self,
        theta0: torch.Tensor,
        grad0: torch.Tensor,
        loss0: torch.Tensor,
        theta1: torch.Tensor,
        loss1: torch.Tensor,
    ) -> None:
        """Sum over the tasks of ``scale * ((theta_i - theta_{i+1}) - dL * g_i)`` for one step ``i``."""
        self._add_increments(theta0 - theta1, loss1 - loss0, grad0)

    def _add_increments(self, increment: torch.Tensor, delta_loss: torch.Tensor, grad: torch.Tensor) -> None:
        """Add ``sum_i scale_i * (increment_i - dL_i g_i)`` over rows ``i`` (steps, or tasks of one step).

        Args:
            increment: ``theta_i - theta_{i+1}``, one row per pair.
            delta_loss: ``L_{i+1} - L_i`` (float64), one per row.
            grad: ``g_i``, one row per pair.
        """
        if self.stabilizer:
            delta_loss = -delta_loss.abs()
        if not self.loss_in_distance:
            delta_loss = torch.zeros_like(delta_loss)
        scale = torch.ones_like(delta_loss)
        if self.norm:
            length = torch.sqrt(delta_loss.square() + increment.double().square().sum(dim=1))
            scale = torch.where(length > 0, 1.0 / length, torch.zeros_like(length))
        # two matrix-vector products instead of a loop over the rows
        total = scale.to(grad.dtype) @ increment - (scale * delta_loss).to(grad.dtype) @ grad
        self._sum = total if self._sum is None else self._sum + total

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._tasks == 0 or self._sum is None:
            return None
        flat, out = self._sum / self._tasks, {}
        for name, value in self.init.items():
            out[name], flat = flat[: value.numel()].reshape(value.shape), flat[value.numel() :]
        return out
