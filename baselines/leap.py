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

from collections.abc import Mapping
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

Tensors = Mapping[str, torch.Tensor]


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
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        self._steps: list[tuple[Tensors, Tensors, float]] = []
        self._tasks += 1
        size = sum(v.numel() for v in self.init.values())
        self._chunk = max(8, min(self.max_chunk, self.chunk_elements // size))
        rows = self._chunk + 1  # preallocated, not fresh buffers per flush
        if getattr(self, "_buffers", None) is None or any(
            self._buffers[k][0].shape[0] != rows
            or self._buffers[k][0].shape[1:] != v.shape
            or self._buffers[k][0].dtype != v.dtype
            for k, v in self.init.items()
        ):
            self._buffers = {
                k: tuple(torch.empty(rows, *v.shape, dtype=v.dtype, device=v.device) for _ in range(3))
                for k, v in self.init.items()
            }

    chunk_elements: ClassVar[int] = 2**20
    max_chunk: ClassVar[int] = 256
    """The steps whose increments one vectorised flush adds: as many as keep a buffer at about
    ``chunk_elements`` values, at most ``max_chunk`` (a flush costs some 30 tensor operations, about 10 %
    of a small model's step if it came every step)."""

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        params, grads = ctx.params, ctx.grads
        if not ctx.snapshot:  # live tensors (a module an optimizer updates in place): copy them
            params = {k: params[k].detach().clone() for k in self.init}
            grads = {k: grads[k].detach().clone() for k in self.init if k in grads}
        self._steps.append((params, grads, float(ctx.loss)))
        if len(self._steps) == self._chunk + 1:
            self._flush()

    def on_task_end(self, ctx: TaskEndContext) -> None:
        self._flush()

    def _flush(self) -> None:
        """Add the increments of every consecutive pair of stored steps; keep the last step."""
        steps, n = self._steps, len(self._steps)
        if n >= 2:
            increments, grads = {}, {}
            with torch.no_grad():
                for k, (theta, grad, work) in self._buffers.items():
                    torch.stack([s[0][k] for s in steps], out=theta[:n])
                    zero = torch.zeros_like(theta[0])
                    torch.stack([s[1].get(k, zero) for s in steps[:-1]], out=grad[: n - 1])
                    increments[k] = torch.sub(theta[: n - 1], theta[1:n], out=work[: n - 1]).reshape(
                        n - 1, -1
                    )
                    grads[k] = grad[: n - 1].reshape(n - 1, -1)
            losses = torch.tensor([s[2] for s in steps], dtype=torch.float64)
            self._add_increments(increments, losses[1:] - losses[:-1], grads)
        self._steps = steps[-1:]

    # ----- batched agents: the same increments, vectorised over the tasks -----------------------
    def on_batch_start(self, ctx: BatchStartContext) -> None:
        for task_ctx in ctx.per_task():
            MetaLearner.on_task_start(self, task_ctx)
        self._previous: tuple[Tensors, Tensors, torch.Tensor] | None = None
        self._tasks += len(ctx.tasks)

    def on_batch_inner_step(self, ctx: BatchInnerStepContext) -> None:
        rows = len(ctx.tasks)
        theta = {k: ctx.params[k].detach().reshape(rows, -1) for k in self.init}
        grad = {k: ctx.grads[k].detach().reshape(rows, -1) for k in self.init}
        loss = ctx.loss.detach().double()
        if self._previous is not None:
            theta0, grad0, loss0 = self._previous
            self._add_increments({k: theta0[k] - theta[k] for k in theta}, loss - loss0, grad0)
        self._previous = (theta, grad, loss)

    def on_batch_end(self, ctx: BatchEndContext) -> None:
        self._previous = None

    def _add_increments(self, increment: Tensors, delta_loss: torch.Tensor, grad: Tensors) -> None:
        """Add ``sum_i scale_i * (increment_i - dL_i g_i)`` over rows ``i`` (steps, or tasks of one step).

        Args:
            increment: ``theta_i - theta_{i+1}`` by parameter name, one row per pair.
            delta_loss: ``L_{i+1} - L_i`` (float64), one per row.
            grad: ``g_i`` by parameter name, one row per pair.
        """
        if self.stabilizer:
            delta_loss = -delta_loss.abs()
        if not self.loss_in_distance:
            delta_loss = torch.zeros_like(delta_loss)
        scale = torch.ones_like(delta_loss)
        if self.norm:  # one global norm over all meta-learned parameters, in float64
            squares = sum(
                torch.linalg.vector_norm(v, dim=1, dtype=torch.float64).square() for v in increment.values()
            )
            length = torch.sqrt(delta_loss.square() + squares)
            scale = torch.where(length > 0, 1.0 / length, torch.zeros_like(length))
        for k, inc in increment.items():  # two matrix-vector products per parameter, not a loop over rows
            total = scale.to(inc.dtype) @ inc - (scale * delta_loss).to(inc.dtype) @ grad[k]
            self._sum[k] = self._sum[k] + total if k in self._sum else total

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._tasks == 0 or not self._sum:
            return None
        return {k: (self._sum[k] / self._tasks).reshape(v.shape) for k, v in self.init.items()}
