"""iMAML (Rajeswaran, Finn, Kakade & Levine, NeurIPS 2019): implicit gradients of a proximal inner problem.

Inner problem: ``u* = argmin_u L_train(u) + (reg / 2) ||u - theta||^2``, approximated
by ``steps`` gradient-descent steps from ``u = theta`` at the agent's learning rate.
Meta-gradient: ``v`` solving ``(I + H/reg) v = grad L_query(u)``, with ``H`` the
Hessian of ``L_train`` at the adapted ``u``, by conjugate gradient with
Hessian-vector products (``cg_steps`` iterations).

Damping: the authors' code (aravindr93/imaml_dev) solves
``((1 + damping) I + H/reg) v = g`` with a small hidden ``damping``. Here
``damping`` is an explicit argument defaulting to 0, i.e. the paper's equation; set
it (e.g. 0.1) to reproduce the code's regularised system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from agents.curves import LearningCurve
from agents.parameters import finite_loss
from baselines.functional import Params, hvp, loss_on, query_loss, train_batches
from baselines.maml import SecondOrderLearner
from metaenvs.validation import non_negative_float, positive_float, positive_int


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def conjugate_gradient(matvec: Any, rhs: Params, steps: int) -> Params:
    """Solve ``A x = rhs`` for a symmetric positive-definite ``A`` given as ``matvec``, by CG."""
    x = {k: torch.zeros_like(v) for k, v in rhs.items()}
    r = {k: v.clone() for k, v in rhs.items()}
    p = {k: v.clone() for k, v in rhs.items()}
    rr = _dot(r, r)
    for _ in range(steps):
        if float(rr) == 0.0:
            break
        ap = matvec(p)
        alpha = rr / _dot(p, ap)
        x = {k: x[k] + alpha * p[k] for k in x}
        r = {k: r[k] - alpha * ap[k] for k in r}
        rr_new = _dot(r, r)
        p = {k: r[k] + (rr_new / rr) * p[k] for k in p}
        rr = rr_new
    return x


class IMAML(SecondOrderLearner):
    """iMAML with a conjugate-gradient implicit meta-gradient.

    Args:
        reg: Proximal strength ``lambda`` of ``(lambda/2)||u - theta||^2``.
        cg_steps: Conjugate-gradient iterations.
        damping: Extra ``damping * I`` in the linear system (0 = the paper's equation).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "imaml"

    def __init__(
        self,
        reg: float = 1.0,
        cg_steps: int = 5,
        damping: float = 0.0,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.reg = positive_float("reg", reg)
        self.cg_steps = positive_int("cg_steps", cg_steps)
        self.damping = non_negative_float("damping", damping)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "reg": self.reg,
            "cg_steps": self.cg_steps,
            "damping": self.damping,
        }

    def stored_states(self, agent: Any, steps: int) -> int:
        return 4  # the inner solution, the CG vectors: nothing grows with the steps

    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        theta = self.start_params(agent)
        u = dict(theta)
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        for step, (x, y) in enumerate(train_batches(agent, task, steps, seed)):
            leaves = {k: v.detach().requires_grad_(True) for k, v in u.items()}
            loss = loss_on(agent, task, x, y)(leaves)
            curve.append(step, finite_loss(loss, task, step))
            grads = torch.autograd.grad(loss, list(leaves.values()))
            u = {
                k: v - agent.lr * (g + self.reg * (v - theta[k]))
                for (k, v), g in zip(u.items(), grads, strict=True)
            }
        data = agent.data(task)
        train_loss = loss_on(agent, task, data.x_train, data.y_train)
        curve.append(steps, finite_loss(train_loss(u), task, steps))
        rhs = torch.func.grad(query_loss(agent, task))(u)

        def matvec(v: Params) -> Params:
            hv = hvp(train_loss, u, v)
            return {k: (1 + self.damping) * v[k] + hv[k] / self.reg for k in v}

        self.add_task_gradient(conjugate_gradient(matvec, rhs, self.cg_steps))
        return curve

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """Every task's implicit meta-gradient at once (``vmap``; see :mod:`baselines.batched`)."""
        from baselines.batched import imaml_task_fn, run_vmapped

        loss = agent.data(tasks[0]).loss
        return run_vmapped(self, agent, tasks, steps, seeds, imaml_task_fn(self, agent, loss, steps))
