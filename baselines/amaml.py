"""Adjoint MAML (A-MAML; Li, Wang, Narayan, Kirby & Zhe, AISTATS 2023, arXiv 2110.08432).

The inner optimisation is the gradient flow ``du/dt = -grad L_train(u)``, ``u(0) = theta``,
solved forward to ``T = alpha * K`` (``alpha``: the agent's learning rate, ``K``: inner
steps) with torchdiffeq (``"rk45"`` = adaptive Dormand-Prince, ``"rk4"``, ``"euler"``);
the states are kept on a grid of step ``h``. The adjoint ``dlambda/dt = H(u) lambda``
is integrated backward from ``lambda(T) = grad L_query(u(T))`` with Heun's method
(modified Euler) and Hessian-vector products; the meta-gradient is ``lambda(0)``.

Options:

* ``early_stopping=True``: a per-task stopping time ``T* = argmin_t L_query(u(t))``
  over the grid; the adjoint starts there.
* ``prox > 0`` adds the authors' released-code proximal term ``(prox/2)||u - theta||^2``
  to both losses (off by default, as in the paper's text). The flow then depends on
  ``theta`` directly, which adds ``prox * integral_0^T lambda dt - prox (u(T) - theta)``
  to the meta-gradient (trapezoidal integral on the grid), and the adjoint becomes
  ``dlambda/dt = (H + prox I) lambda``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from agents.curves import LearningCurve
from agents.functional import gradient_of, linearization
from agents.task_data import Params, TaskBatch, check_losses, per_task
from baselines.second_order import SecondOrderLearner
from metaenvs.errors import NonFiniteError
from metaenvs.validation import non_negative_float, one_of, positive_float

SOLVERS = {"rk45": "dopri5", "rk4": "rk4", "euler": "euler"}


def _flatten(params: Params, lead: int = 0) -> torch.Tensor:
    """One vector per task: the parameters flattened after their ``lead`` leading (task) dimensions."""
    return torch.cat([v.reshape(*v.shape[:lead], -1) for v in params.values()], dim=-1)


def _unflatten(flat: torch.Tensor, like: Params) -> Params:
    """:func:`_flatten`'s inverse; ``like`` is one task's parameters, ``flat`` may lead with tasks."""
    out, offset, lead = {}, 0, flat.shape[:-1]
    for k, v in like.items():
        out[k] = flat[..., offset : offset + v.numel()].reshape(*lead, *v.shape)
        offset += v.numel()
    return out


class AMAML(SecondOrderLearner):
    """A-MAML: gradient-flow inner loop and a Heun adjoint.

    Args:
        step: Grid step ``h`` of the stored states and of the adjoint solve.
        solver: ``"rk45"`` (adaptive), ``"rk4"`` or ``"euler"`` for the forward flow.
        rtol: Relative tolerance of ``"rk45"``.
        atol: Absolute tolerance of ``"rk45"``.
        early_stopping: Per-task stopping time at the best query loss on the grid.
        prox: Proximal strength of the released code's variant (0 = paper's text).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "amaml"

    def __init__(
        self,
        step: float = 0.01,
        solver: str = "rk4",
        rtol: float = 1e-6,
        atol: float = 1e-8,
        early_stopping: bool = False,
        prox: float = 0.0,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.step = positive_float("step", step)
        self.solver = one_of("solver", solver, SOLVERS)
        self.rtol, self.atol = positive_float("rtol", rtol), positive_float("atol", atol)
        self.early_stopping = bool(early_stopping)
        self.prox = non_negative_float("prox", prox)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "step": self.step,
            "solver": self.solver,
            "rtol": self.rtol,
            "atol": self.atol,
            "early_stopping": self.early_stopping,
            "prox": self.prox,
        }

    def stored_states(self, agent: Any, steps: int) -> int:
        return max(1, round(agent.lr * steps / self.step)) + 1

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """All tasks at once on the fixed grid (RK4 / Euler, no early stopping); else task by task.

        The adaptive ``"rk45"`` controls one step size from the error of the whole state, which
        would couple the tasks, and early stopping gives every task its own horizon.
        """
        if self.solver == "rk45" or self.early_stopping:
            return [self.learn_task(agent, t, steps, s) for t, s in zip(tasks, seeds, strict=True)]
        return super().learn_batch(agent, tasks, steps, seeds)

    def task_gradients(self, agent: Any, batch: TaskBatch, steps: int) -> tuple[Params, list]:
        """The flow forward (torchdiffeq), then the Heun adjoint back, on flat parameter vectors."""
        from torchdiffeq import odeint

        batched = batch.batched
        theta = self.start_params(agent)  # the shapes of one task's parameters
        f = agent.loss_function(batch.loss)
        start = self.start_params(agent, batch)
        theta_flat = _flatten(start, lead=1 if batched else 0)
        horizon = agent.inner_optimizer.lr * steps
        n = max(1, round(horizon / self.step))
        times = torch.linspace(0.0, horizon, n + 1, dtype=theta_flat.dtype)
        h = horizon / n

        def flat_loss(u: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return f(_unflatten(u, theta), x, y)

        gradient = gradient_of(flat_loss, batched)
        losses_at = per_task(flat_loss, batched)

        def flow(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
            if not bool(torch.isfinite(u).all()):
                raise NonFiniteError(
                    f"The gradient flow of task(s) {[t.id for t in batch.tasks]} ({batch.tasks[0].dist_id}) "
                    f"blew up at t = {float(t):.4g}; lower the inner learning rate (T = lr * steps) or the "
                    "step size."
                )
            du = -gradient(u, batch.x_train, batch.y_train)
            return du - self.prox * (u - theta_flat) if self.prox else du

        options = {"step_size": h} if self.solver != "rk45" else None
        tolerances = {"rtol": self.rtol, "atol": self.atol} if self.solver == "rk45" else {}
        with torch.no_grad():
            states = odeint(
                flow, theta_flat, times, method=SOLVERS[self.solver], options=options, **tolerances
            )
            losses = torch.stack([losses_at(u, batch.x_train, batch.y_train) for u in states])
        values = check_losses(batch, losses)
        stop = len(states) - 1
        if self.early_stopping:  # one task (learn_batch runs early stopping task by task)
            with torch.no_grad():
                query = torch.stack([flat_loss(u, batch.x_query, batch.y_query) for u in states])
            stop = int(torch.argmin(query))
        states = states[: stop + 1]

        def field(u: torch.Tensor) -> Any:
            """``v -> (H(u) + prox) v``, linearized once at ``u``."""
            hessian = linearization(flat_loss, u, batch.x_train, batch.y_train, batched)[2]
            return (lambda v: hessian(v) + self.prox * v) if self.prox else hessian

        lam = gradient(states[-1], batch.x_query, batch.y_query)
        if self.prox:
            lam = lam + self.prox * (states[-1] - theta_flat)
        integral = 0.5 * h * lam
        at_j = field(states[-1])
        for j in range(len(states) - 1, 0, -1):  # Heun's method for dlambda/dt = (H + prox) lambda
            at_previous = field(states[j - 1])  # used here and as the next step's at_j
            slope = at_j(lam)
            slope_next = at_previous(lam - h * slope)
            at_j = at_previous
            lam = lam - 0.5 * h * (slope + slope_next)
            integral = integral + (0.5 * h if j == 1 else h) * lam
        if self.prox:
            lam = lam + self.prox * integral - self.prox * (states[-1] - theta_flat)
        curves = []
        for task, row in zip(batch.tasks, values, strict=True):
            curve = LearningCurve(task.id, "inner_step", "train_loss")
            for t, value in zip(times, row, strict=True):
                curve.append(float(t) / agent.inner_optimizer.lr, value)
            curves.append(curve)
        return _unflatten(lam, theta), curves
