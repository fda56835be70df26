"""Second-order meta-gradients of a whole meta-batch at once: ``vmap`` over each learner's computation.

For a batched agent the driver calls ``learner.learn_batch(agent, tasks, steps, seeds)``.
A-MAML on a fixed grid stacks every task's flow into one ODE state (:func:`amaml_batch`).
MAML, the exact adjoint and iMAML write their per-task computation as a pure
function of one task's (stacked) data and ``torch.func.vmap`` it over the tasks;
the start parameters are shared (``in_dims=None``), so ``grad`` inside ``vmap``
gives every task's meta-gradient. Minibatches are the per-task loop's (same
generators), so the results agree with :meth:`learn_task` task by task to float
tolerance. Per-task meta-gradients are then accumulated in task order, exactly as
the per-task loop accumulates them.

Hessian-vector products are ``torch.func.vjp`` of ``grad`` (reverse-over-reverse, as
in the per-task code), which ``vmap`` batches. iMAML's
conjugate gradient runs its fixed number of iterations with a guarded step
instead of the per-task loop's early exit when the residual is exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import grad, grad_and_value, vjp, vmap

from agents.batched import (
    TaskBatch,
    check_losses,
    loss_function,
    minibatch_indices,
    optimizer_step,
    stack_tasks,
)
from agents.curves import LearningCurve, curves_from_rows

Params = dict[str, torch.Tensor]
TaskFn = Callable[..., tuple[Params, torch.Tensor]]


def _step_data(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None, k: int):
    """One task's minibatch of inner step ``k`` (inside ``vmap``: ``x`` and ``idx`` are per-task)."""
    return (x, y) if idx is None else (x[idx[k]], y[idx[k]])


def run_vmapped(
    learner: Any, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int], per_task: TaskFn
) -> list[LearningCurve]:
    """``vmap`` ``per_task(start, x, y, xq, yq, idx) -> (meta-gradient, losses)``; accumulate; curves."""
    batch: TaskBatch = stack_tasks(agent, tasks)
    idx = minibatch_indices(agent, batch, steps, seeds)
    start = learner.start_params(agent)
    in_dims = (None, 0, 0, 0, 0, None if idx is None else 0)
    grads, losses = vmap(per_task, in_dims=in_dims)(
        start, batch.x_train, batch.y_train, batch.x_query, batch.y_query, idx
    )
    values = check_losses(batch.tasks, losses.T)
    for i in range(batch.size):
        learner.add_task_gradient({k: grads[k][i] for k in learner.init})
    return curves_from_rows(batch.tasks, values)


def maml_task_fn(learner: Any, agent: Any, loss: str, steps: int) -> TaskFn:
    """MAML's meta-gradient of one task: ``grad`` of the query loss through the K inner updates."""
    f = loss_function(agent, loss)
    names = list(learner.init)

    def inner(params: Params, x, y, idx) -> tuple[Params, torch.Tensor]:
        state: dict[str, Any] = {}
        losses = []
        for k in range(steps):
            g, value = grad_and_value(f)(params, *_step_data(x, y, idx, k))
            losses.append(value)
            if learner.first_order:
                g = {n: v.detach() for n, v in g.items()}
            params, state = optimizer_step(
                learner.inner_optimizer_of(agent), params, g, state, agent.lr, agent.momentum, k
            )
        return params, torch.stack([*losses, f(params, x, y)]).detach()

    def outer(sub: Params, start: Params, x, y, xq, yq, idx) -> tuple[torch.Tensor, torch.Tensor]:
        final, losses = inner({**start, **sub}, x, y, idx)
        return f(final, xq, yq), losses

    def per_task(start: Params, x, y, xq, yq, idx) -> tuple[Params, torch.Tensor]:
        if learner.first_order:  # the query gradient at the adapted parameters
            final, losses = inner({n: v.detach() for n, v in start.items()}, x, y, idx)
            g = grad(f)({n: v.detach() for n, v in final.items()}, xq, yq)
            return {n: g[n] for n in names}, losses
        sub = {n: start[n] for n in names}
        return grad(outer, has_aux=True)(sub, start, x, y, xq, yq, idx)

    return per_task


def adjoint_task_fn(learner: Any, agent: Any, loss: str, steps: int) -> TaskFn:
    """The reversed discrete adjoint of K gradient-descent steps for one task (all states kept)."""
    f, lr = loss_function(agent, loss), agent.lr

    def per_task(start: Params, x, y, xq, yq, idx) -> tuple[Params, torch.Tensor]:
        params, states, losses = dict(start), [], []
        for k in range(steps):
            states.append(params)
            g, value = grad_and_value(f)(params, *_step_data(x, y, idx, k))
            losses.append(value)
            params = {n: params[n] - lr * g[n] for n in params}
        losses.append(f(params, x, y))
        lam = grad(f)(params, xq, yq)
        for k in reversed(range(steps)):
            xb, yb = _step_data(x, y, idx, k)
            h_lam = _hvp(lambda p, xb=xb, yb=yb: grad(f)(p, xb, yb), states[k], lam)
            lam = {n: lam[n] - lr * h_lam[n] for n in lam}
        return lam, torch.stack(losses).detach()

    return per_task


def _hvp(grad_fn: Callable[[Params], Params], at: Params, vector: Params) -> Params:
    """``H(at) @ vector`` as the vector-Jacobian product of the gradient (the Hessian is symmetric)."""
    _, pullback = vjp(grad_fn, at)
    return pullback(vector)[0]


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _guarded_ratio(num: torch.Tensor, den: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    return torch.where(alive, num / torch.where(alive, den, torch.ones_like(den)), torch.zeros_like(num))


def imaml_task_fn(learner: Any, agent: Any, loss: str, steps: int) -> TaskFn:
    """iMAML's implicit meta-gradient of one task: proximal inner loop, then conjugate gradient."""
    f, lr, reg = loss_function(agent, loss), agent.lr, learner.reg

    def per_task(theta: Params, x, y, xq, yq, idx) -> tuple[Params, torch.Tensor]:
        u, losses = dict(theta), []
        for k in range(steps):
            g, value = grad_and_value(f)(u, *_step_data(x, y, idx, k))
            losses.append(value)
            u = {n: u[n] - lr * (g[n] + reg * (u[n] - theta[n])) for n in u}
        losses.append(f(u, x, y))
        rhs = grad(f)(u, xq, yq)

        def matvec(v: Params) -> Params:
            hv = _hvp(lambda p: grad(f)(p, x, y), u, v)
            return {n: (1 + learner.damping) * v[n] + hv[n] / reg for n in v}

        sol = {n: torch.zeros_like(v) for n, v in rhs.items()}
        r, p = dict(rhs), dict(rhs)
        rr = _dot(r, r)
        for _ in range(learner.cg_steps):
            alive = rr != 0
            ap = matvec(p)
            alpha = _guarded_ratio(rr, _dot(p, ap), alive)
            sol = {n: sol[n] + alpha * p[n] for n in sol}
            r = {n: r[n] - alpha * ap[n] for n in r}
            rr_new = _dot(r, r)
            beta = _guarded_ratio(rr_new, rr, alive)
            p = {n: r[n] + beta * p[n] for n in p}
            rr = torch.where(alive, rr_new, rr)
        return sol, torch.stack(losses).detach()

    return per_task


def amaml_batch(learner: Any, agent: Any, tasks: Sequence[Any], steps: int) -> list[LearningCurve]:
    """A-MAML on a fixed grid (RK4 / Euler) for all tasks at once: the flows stacked as one ODE state.

    The forward solve integrates the ``(B, d)`` state of every task's flow with ``vmap``-ed
    gradients (fixed-step solvers act element by element, so tasks do not interact); the
    Heun adjoint runs on the stacked adjoint states with ``vmap``-ed Hessian-vector products.
    """
    from torchdiffeq import odeint

    from baselines.amaml import SOLVERS, _flatten, _unflatten

    batch = stack_tasks(agent, tasks)
    theta = learner.start_params(agent)
    f = loss_function(agent, batch.loss)
    theta_flat = _flatten(theta)
    horizon = agent.lr * steps
    n = max(1, round(horizon / learner.step))
    times = torch.linspace(0.0, horizon, n + 1, dtype=theta_flat.dtype)
    h = horizon / n

    def flat_loss(u: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return f(_unflatten(u, theta), x, y)

    grad_all = vmap(grad(flat_loss))
    hvp_all = vmap(lambda u, v, x, y: _hvp(lambda w: grad(flat_loss)(w, x, y), u, v))

    def flow(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(u).all()):
            check_losses(batch.tasks, torch.full((1, batch.size), float("nan")))
        du = -grad_all(u, batch.x_train, batch.y_train)
        return du - learner.prox * (u - theta_flat) if learner.prox else du

    start = theta_flat.expand(batch.size, -1).clone()
    with torch.no_grad():
        states = odeint(flow, start, times, method=SOLVERS[learner.solver], options={"step_size": h})
        losses = torch.stack([vmap(flat_loss)(u, batch.x_train, batch.y_train) for u in states])
    values = check_losses(batch.tasks, losses)
    lam = vmap(grad(flat_loss))(states[-1], batch.x_query, batch.y_query)
    if learner.prox:
        lam = lam + learner.prox * (states[-1] - theta_flat)
    integral = 0.5 * h * lam

    def field(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        hv = hvp_all(u, v, batch.x_train, batch.y_train)
        return hv + learner.prox * v if learner.prox else hv

    for j in range(n, 0, -1):
        slope = field(states[j], lam)
        slope_next = field(states[j - 1], lam - h * slope)
        lam = lam - 0.5 * h * (slope + slope_next)
        integral = integral + (0.5 * h if j == 1 else h) * lam
    if learner.prox:
        lam = lam + learner.prox * integral - learner.prox * (states[-1] - theta_flat)
    curves = []
    for b, (task, row) in enumerate(zip(batch.tasks, values, strict=True)):
        learner.add_task_gradient(_unflatten(lam[b], theta))
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        for t, value in zip(times, row, strict=True):
            curve.append(float(t) / agent.lr, value)
        curves.append(curve)
    return curves
