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

from typing import Any, ClassVar

from agents.curvature import CGInfo, conjugate_gradient
from agents.functional import linearization
from agents.task_data import Params, TaskBatch
from baselines.second_order import SecondOrderLearner, curves_of
from metaenvs.validation import non_negative_float, positive_float, positive_int


class IMAML(SecondOrderLearner):
    """iMAML with a conjugate-gradient implicit meta-gradient.

    Args:
        reg: Proximal strength ``lambda`` of ``(lambda/2)||u - theta||^2``.
        cg_steps: Conjugate-gradient iterations (at most).
        cg_tol: Stop CG once the residual is at most ``cg_tol`` times the right-hand side (0: run
            ``cg_steps``, stopping early only on an exact solve).
        damping: Extra ``damping * I`` in the linear system (0 = the paper's equation).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.

    Raises:
        IndefiniteSystemError: (while learning) if ``(1 + damping) I + H/reg`` shows negative
            curvature for a task: the Hessian there has eigenvalues below ``-reg (1 + damping)``, and
            CG's answer would be meaningless. Raise ``reg``.
    """

    name: ClassVar[str] = "imaml"

    def __init__(
        self,
        reg: float = 1.0,
        cg_steps: int = 5,
        cg_tol: float = 1e-10,
        damping: float = 0.0,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.reg = positive_float("reg", reg)
        self.cg_steps = positive_int("cg_steps", cg_steps)
        self.cg_tol = non_negative_float("cg_tol", cg_tol)
        self.damping = non_negative_float("damping", damping)
        self.last_cg: CGInfo | None = None

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "reg": self.reg,
            "cg_steps": self.cg_steps,
            "cg_tol": self.cg_tol,
            "damping": self.damping,
        }

    def stored_states(self, agent: Any, steps: int) -> int:
        return 4  # the inner solution, the CG vectors: nothing grows with the steps

    def task_gradients(self, agent: Any, batch: TaskBatch, steps: int) -> tuple[Params, list]:
        theta = self.start_params(agent, batch)
        inner = self.inner_loop(agent, batch, theta, steps, prox=(self.reg, theta))
        u = inner.params
        f = agent.loss_function(batch.loss)
        rhs = self.query_gradient(agent, batch, u)
        hessian = linearization(f, u, batch.x_train, batch.y_train, batch.batched)[2]  # linearized once

        def matvec(v: Params) -> Params:
            hv = hessian(v)
            return {k: (1 + self.damping) * v[k] + hv[k] / self.reg for k in v}

        solution, self.last_cg = conjugate_gradient(
            matvec, rhs, self.cg_steps, self.cg_tol, batch.batched, batch.tasks
        )
        return solution, curves_of(batch, inner.losses)
