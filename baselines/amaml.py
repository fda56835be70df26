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
from agents.parameters import finite_loss
from baselines.functional import Params, hvp, loss_on, query_loss
from baselines.maml import SecondOrderLearner
from metaenvs.errors import NonFiniteError
from metaenvs.validation import non_negative_float, one_of, positive_float

SOLVERS = {"rk45": "dopri5", "rk4": "rk4", "euler": "euler"}


def _flatten(params: Params) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in params.values()])


def _unflatten(flat: torch.Tensor, like: Params) -> Params:
    out, offset = {}, 0
    for k, v in like.items():
        out[k] = flat[offset : offset + v.numel()].reshape(v.shape)
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

    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        gradient = self.meta_gradient_for(agent, task, agent.lr * steps)
        self.add_task_gradient(gradient)
        return self._curve

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """All tasks at once on the fixed grid (RK4 / Euler, no early stopping); else task by task.

        The adaptive ``"rk45"`` controls one step size from the error of the whole state, which
        would couple the tasks, and early stopping gives every task its own horizon.
        """
        if self.solver == "rk45" or self.early_stopping:
            return super().learn_batch(agent, tasks, steps, seeds)
        from baselines.batched import amaml_batch

        return amaml_batch(self, agent, tasks, steps)

    def meta_gradient_for(self, agent: Any, task: Any, horizon: float) -> Params:
        """The meta-gradient of one task for flow time ``horizon`` (also sets the task's curve)."""
        from torchdiffeq import odeint

        theta = self.start_params(agent)
        data = agent.data(task)
        train_loss = loss_on(agent, task, data.x_train, data.y_train)
        grad_train = torch.func.grad(train_loss)
        theta_flat = _flatten(theta)
        n = max(1, round(horizon / self.step))
        times = torch.linspace(0.0, horizon, n + 1, dtype=theta_flat.dtype)
        h = horizon / n

        def flow(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
            if not bool(torch.isfinite(u).all()):
                raise NonFiniteError(
                    f"The gradient flow of task {task.id!r} ({task.dist_id}) blew up at t = {float(t):.4g}; "
                    "lower the inner learning rate (T = lr * steps) or the step size."
                )
            du = -_flatten(grad_train(_unflatten(u, theta)))
            return du - self.prox * (u - theta_flat) if self.prox else du

        options = {"step_size": h} if self.solver != "rk45" else None
        tolerances = {"rtol": self.rtol, "atol": self.atol} if self.solver == "rk45" else {}
        with torch.no_grad():
            states = odeint(
                flow, theta_flat, times, method=SOLVERS[self.solver], options=options, **tolerances
            )
        self._curve = self._record_curve(task, train_loss, states, times, agent.lr, theta)
        stop = self._stop_index(agent, task, states, theta)
        return self._adjoint(agent, task, train_loss, states[: stop + 1], h, theta)

    def _record_curve(
        self, task: Any, train_loss: Any, states: torch.Tensor, times: torch.Tensor, lr: float, theta: Params
    ) -> LearningCurve:
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        with torch.no_grad():
            for j, (t, u) in enumerate(zip(times, states, strict=True)):
                curve.append(float(t) / lr, finite_loss(train_loss(_unflatten(u, theta)), task, j))
        return curve

    def _stop_index(self, agent: Any, task: Any, states: torch.Tensor, theta: Params) -> int:
        if not self.early_stopping:
            return len(states) - 1
        outer = query_loss(agent, task)
        with torch.no_grad():
            losses = torch.stack([outer(_unflatten(u, theta)) for u in states])
        return int(torch.argmin(losses))

    def _adjoint(
        self, agent: Any, task: Any, train_loss: Any, states: torch.Tensor, h: float, theta: Params
    ) -> Params:
        """Heun's method for ``dlambda/dt = (H + prox) lambda`` from ``t = T`` back to 0."""

        def field(u_flat: torch.Tensor, lam: Params) -> Params:
            hl = hvp(train_loss, _unflatten(u_flat, theta), lam)
            return {k: hl[k] + self.prox * lam[k] for k in lam} if self.prox else hl

        u_end = _unflatten(states[-1], theta)
        lam = torch.func.grad(query_loss(agent, task))(u_end)
        if self.prox:
            lam = {k: lam[k] + self.prox * (u_end[k] - theta[k]) for k in lam}
        integral = {k: 0.5 * h * v for k, v in lam.items()}
        for j in range(len(states) - 1, 0, -1):
            slope = field(states[j], lam)
            guess = {k: lam[k] - h * slope[k] for k in lam}
            slope_next = field(states[j - 1], guess)
            lam = {k: lam[k] - 0.5 * h * (slope[k] + slope_next[k]) for k in lam}
            weight = 0.5 * h if j == 1 else h
            integral = {k: integral[k] + weight * lam[k] for k in lam}
        if not self.prox:
            return lam
        return {k: lam[k] + self.prox * integral[k] - self.prox * (u_end[k] - theta[k]) for k in lam}
