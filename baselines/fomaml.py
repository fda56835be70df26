"""First-order MAML (Finn et al. 2017) and first-order multi-step loss (MAML++, Antoniou et al. 2019).

Both treat the adapted parameters as constants (no second-order terms):

* FOMAML's meta-gradient is ``grad L_query(theta_K)``, the gradient of the task's
  query (held-out) loss at the adapted parameters, averaged over the meta-batch.
* FOMAML++ accumulates ``sum_i w_i * grad L_query(theta_i)`` over the inner steps
  (MAML++'s multi-step loss), with MAML++'s annealed importance weights: uniform
  at first, moving linearly to all weight on the last step over
  ``msl_anneal_steps`` meta steps.

Agents that offer a differentiable functional loss (``SupervisedAgent``) supply
the query loss. For agents without one (SB3 actor-critics) the query gradient
is the last inner step's gradient (FOMAML with the final minibatch as query, as
in Nichol et al. 2018), and FOMAML++ weights each step's own gradient.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from agents.hooks import InnerStepContext, TaskEndContext, TaskStartContext
from baselines.base import MetaLearner
from metaenvs.validation import positive_int


def query_gradient(
    agent: Any, task: Any, params: dict[str, torch.Tensor], names: list[str]
) -> dict[str, torch.Tensor] | None:
    """Gradient of the task's query loss at ``params`` w.r.t. ``names``, or ``None`` if unavailable."""
    if not agent.capabilities.differentiable:
        return None
    leaves = {k: v.detach().clone().requires_grad_(k in names) for k, v in params.items()}
    loss = agent.task_loss(leaves, task, "query")
    grads = torch.autograd.grad(loss, [leaves[k] for k in names])
    return dict(zip(names, grads, strict=True))


class FOMAML(MetaLearner):
    """First-order MAML: the query-loss gradient at the adapted parameters.

    Args:
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "fomaml"
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_tasks")

    def __init__(self, meta_lr: float = 1e-3, meta_optimizer: str = "adam", **kwargs: Any) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0
        self._last_grads: dict[str, torch.Tensor] = {}

    def _add(self, grads: dict[str, torch.Tensor], weight: float = 1.0) -> None:
        for k, g in grads.items():
            self._sum[k] = self._sum[k] + weight * g if k in self._sum else weight * g.detach().clone()

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        self._last_grads = {k: ctx.grads[k].detach().clone() for k in self.init if k in ctx.grads}

    def on_task_end(self, ctx: TaskEndContext) -> None:
        params = {k: v for k, v in ctx.params.items()}
        grads = query_gradient(ctx.agent, ctx.task, params, list(self.init))
        self._add(grads if grads is not None else self._last_grads)
        self._tasks += 1

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._tasks == 0:
            return None
        return {k: v / self._tasks for k, v in self._sum.items()}


class FOMAMLPlusPlus(FOMAML):
    """First-order MAML++ multi-step loss with annealed per-step importance weights.

    Args:
        msl_anneal_steps: Meta steps over which the weights move from uniform to last-step only.
        **kwargs: See :class:`FOMAML`.
    """

    name: ClassVar[str] = "fomamlpp"

    def __init__(self, msl_anneal_steps: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.msl_anneal_steps = positive_int("msl_anneal_steps", msl_anneal_steps)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "msl_anneal_steps": self.msl_anneal_steps}

    def step_weights(self, steps: int) -> torch.Tensor:
        """Importance of each inner step's query loss at the current meta step (sums to 1).

        Weights start uniform (``1/K``) and decay linearly to a floor of ``0.03/K`` for
        all but the last step, which takes the rest, as in MAML++.
        """
        frac = min(1.0, self.meta_step / self.msl_anneal_steps)
        uniform = 1.0 / steps
        others = max(uniform * (1 - frac), 0.03 / steps) if steps > 1 else 0.0
        weights = torch.full((steps,), others, dtype=torch.float64)
        weights[-1] = 1.0 - others * (steps - 1)
        return weights

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        self._weights = self.step_weights(ctx.steps)

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        # The query gradient at theta_i, i = 1..K-1; theta_K is added at task end.
        super().on_inner_step(ctx)
        if ctx.step == 0:
            return
        params = {k: v for k, v in ctx.params.items()}
        grads = query_gradient(ctx.agent, ctx.task, params, list(self.init))
        if grads is None:
            grads = {k: ctx.grads[k] for k in self.init if k in ctx.grads}
        self._add(grads, float(self._weights[ctx.step - 1]))

    def on_task_end(self, ctx: TaskEndContext) -> None:
        params = {k: v for k, v in ctx.params.items()}
        grads = query_gradient(ctx.agent, ctx.task, params, list(self.init))
        if grads is None:
            grads = self._last_grads
        self._add(grads, float(self._weights[-1]))
        self._tasks += 1
