"""MAML (Finn et al. 2017) by backpropagation through the inner loop, and its exact discrete adjoint.

Both run the one functional inner loop (:func:`agents.functional.inner_loop`) in either layout
(one task, or a stacked meta-batch: see :class:`~baselines.second_order.SecondOrderLearner`).
Every parameter is adapted in the inner loop; the meta-gradient is taken w.r.t. the meta-learned
subset of the initialization.

* :class:`MAML` keeps the graph of all K steps (memory O(K * graph)) and differentiates through the
  agent's own inner optimizer (SGD, SGD with momentum, Adam). Its first-order form is
  :class:`~baselines.fomaml.FOMAML` (``--algo fomaml``), the one FOMAML.
* :class:`ExactAdjoint` gives MAML's exact meta-gradient for plain gradient descent without one graph
  through the loop: it reverses the K updates with Hessian-vector products,
  ``lambda_k = (I - alpha H(theta_k)) lambda_{k+1}`` from ``lambda_K = grad L_query(theta_K)``.
  Each step's Hessian is the linearization its own gradient computation kept
  (:func:`agents.functional.linearization`), so the way back costs one backward pass per step.
  ``checkpoint=False`` keeps all K linearizations (O(K) step graphs); ``checkpoint=True`` keeps
  every ceil(sqrt(K))-th state and recomputes each segment, linearized, on the way back
  (O(sqrt(K)) states and step graphs, one extra forward pass), in both layouts.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch.func import grad

from agents.functional import inner_loop
from agents.task_data import Params, TaskBatch, check_losses, per_task
from baselines.second_order import (
    FIRST_ORDER_ALTERNATIVES,
    INNER_OPTIMIZERS,
    SecondOrderLearner,
    curves_of,
)
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.validation import non_negative_float, one_of

__all__ = ["FIRST_ORDER_ALTERNATIVES", "MAML", "ExactAdjoint", "SecondOrderLearner"]


class MAML(SecondOrderLearner):
    """MAML with the graph of the inner loop.

    Args:
        inner_optimizer: ``None`` (default): the agent's own optimizer, the one its protocol names;
            ``"sgd"``, ``"momentum"`` or ``"adam"`` must be the agent's (else refused).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        first_order: Refused: first-order MAML is :class:`~baselines.fomaml.FOMAML`.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "maml"
    graph_factor: ClassVar[int] = 4
    inner_optimizers: ClassVar[tuple[str, ...]] = INNER_OPTIMIZERS

    def __init__(
        self,
        inner_optimizer: str | None = None,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        first_order: bool = False,
        **kwargs: Any,
    ) -> None:
        if first_order:
            raise InvalidArgumentError(
                "MAML(first_order=True) is FOMAML, which has one implementation: use "
                "make_meta_learner('fomaml') (metaenvs train --algo fomaml)."
            )
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.inner_optimizer = (
            None if inner_optimizer is None else one_of("inner_optimizer", inner_optimizer, INNER_OPTIMIZERS)
        )

    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        used = getattr(agent, "optimizer_name", "sgd")
        if self.inner_optimizer is not None and self.inner_optimizer != used:
            raise IncompatibleAgentError(
                f"MAML(inner_optimizer={self.inner_optimizer!r}) would meta-train through another inner loop "
                f"than the agent's {used!r} (its protocol's recipe); leave inner_optimizer unset to "
                "differentiate through the agent's own optimizer."
            )
        super().initialize(agent, total_meta_steps)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "inner_optimizer": self.inner_optimizer}

    def task_gradients(self, agent: Any, batch: TaskBatch, steps: int) -> tuple[Params, list]:
        """The gradient of the query loss through the K inner updates of the one loop: by autograd for
        one task, and for a stacked batch by ``vmap(grad(...))`` of one task's whole loop (autograd
        through ``vmap``-ed gradients gave wrong meta-gradients through BatchNorm)."""
        f, optimizer = agent.loss_function(batch.loss), agent.inner_optimizer
        if not batch.batched:  # one task: the single layout keeps autograd's graph (faster than torch.func)
            start = self.start_params(agent, batch)
            for k in self.init:
                start[k].requires_grad_(True)
            trajectory = inner_loop(f, start, batch, steps, optimizer, create_graph=True)
            outer = f(trajectory.params, batch.x_query, batch.y_query)
            grads = torch.autograd.grad(outer, [start[k] for k in self.init])
            return dict(zip(self.init, grads, strict=True)), curves_of(batch, trajectory.losses)
        start = self.start_params(agent, batch)  # stacked
        meta = {k: v.detach() for k, v in self.init.items()}  # shared by the tasks
        rest = {k: v for k, v in start.items() if k not in meta}

        def outer(sub: Params, rest: Params, x, y, xq, yq, idx) -> tuple[torch.Tensor, torch.Tensor]:
            one = TaskBatch(batch.tasks[:1], x, y, xq, yq, batch.loss, batched=False, indices=idx)
            trajectory = inner_loop(f, {**rest, **sub}, one, steps, optimizer, transformed=True)
            return f(trajectory.params, xq, yq), trajectory.losses

        in_dims = (None, 0, 0, 0, 0, 0, None if batch.indices is None else 0)
        gradient = per_task(grad(outer, has_aux=True), batch.batched, in_dims)
        data = (batch.x_train, batch.y_train, batch.x_query, batch.y_query, batch.indices)
        grads, losses = gradient(meta, rest, *data)
        losses = losses.T if batch.batched else losses
        check_losses(batch, losses)
        return grads, curves_of(batch, losses)


class ExactAdjoint(SecondOrderLearner):
    """MAML's exact meta-gradient for plain gradient descent, by the reversed discrete adjoint.

    Args:
        checkpoint: Keep only every ceil(sqrt(K))-th state and recompute segments (O(sqrt K) memory).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "adjoint"
    graph_factor: ClassVar[int] = 4  # a step's linearization keeps its gradient's graph

    def __init__(
        self, checkpoint: bool = False, meta_lr: float = 1e-3, meta_optimizer: str = "adam", **kwargs: Any
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.checkpoint = bool(checkpoint)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "checkpoint": self.checkpoint}

    def stored_states(self, agent: Any, steps: int) -> int:
        return 2 * math.ceil(math.sqrt(steps)) + 1 if self.checkpoint else steps + 1

    def task_gradients(self, agent: Any, batch: TaskBatch, steps: int) -> tuple[Params, list]:
        lr = non_negative_float("lr", agent.inner_optimizer.lr)
        stride = math.ceil(math.sqrt(steps)) if self.checkpoint else 1
        start = self.start_params(agent, batch)
        linearize = not self.checkpoint
        forward = self.inner_loop(agent, batch, start, steps, keep_every=stride, linearize=linearize)
        lam = self.query_gradient(agent, batch, forward.params)
        names = list(lam)
        hessians = forward.hessians
        for k in reversed(range(steps)):
            if k not in hessians:  # checkpointed: recompute the segment from its checkpoint, linearized
                base = (k // stride) * stride
                length = min(stride, steps - base)
                hessians = self.inner_loop(
                    agent, batch, forward.states[base], length, keep_every=1, first_step=base,
                    final_loss=False, check=False, linearize=True,
                ).hessians  # fmt: skip
            h_lam = hessians.pop(k)(lam)  # freed once used
            updated = torch._foreach_add([lam[n] for n in names], [h_lam[n] for n in names], alpha=-lr)
            lam = dict(zip(names, updated, strict=True))
        return lam, curves_of(batch, forward.losses)
