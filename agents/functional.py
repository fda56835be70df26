"""The one functional inner loop: the single place where supervised learning happens.

Everything works on parameter dicts (``dict[str, Tensor]``) and a pure per-task loss
``loss(params, x, y)`` (``torch.func.functional_call`` of the agent's model). One
code path serves every caller, in two layouts:

* **single** (``batched=False``): one task, plain tensors; gradients by
  ``torch.autograd.grad`` (the fastest form for one small model, 1.4x a
  ``torch.optim`` step on the Sinusoid MLP);
* **stacked** (``batched=True``): the ``B`` tasks of a meta-batch stacked along a
  leading task dimension, gradients by ``vmap(grad_and_value(loss))``.

:func:`inner_loop` runs K steps of :class:`InnerOptimizer` (SGD, SGD with momentum,
Adam, as ``torch.optim`` computes them) from given parameters on a :class:`TaskBatch`
and returns the :class:`Trajectory`. With ``create_graph=True`` autograd sees through
every step (MAML); ``keep_every`` keeps states for the adjoint methods (with ``linearize``,
their Hessian maps too: :func:`linearization`, the one HVP); callbacks let the agents fire
their hook events from it. The data it trains on is :mod:`agents.task_data`; the one CG is
in :mod:`agents.curvature`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import grad, grad_and_value, vjp, vmap

from agents.parameters import finite_loss, safe_sqrt
from agents.task_data import LossFn, Params, TaskBatch, check_losses, per_task
from metaenvs.errors import InvalidArgumentError

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
OPTIMIZERS = ("sgd", "momentum", "adam")


# ----- the one functional optimizer -----------------------------------------------------------
@dataclass(frozen=True)
class InnerOptimizer:
    """SGD, SGD with momentum or Adam as a pure, differentiable update of a parameter dict.

    Mirrors ``torch.optim.SGD`` (dampening 0, no Nesterov) and ``torch.optim.Adam``
    (PyTorch's defaults) update by update; element-wise, so it serves one task or a stack.
    Adam's ``sqrt`` uses :func:`~agents.parameters.safe_sqrt`, whose derivative is finite at
    0 (a dead unit's zero gradient), so differentiating through it never gives NaN.

    Attributes:
        name: ``"sgd"``, ``"momentum"`` or ``"adam"``.
        lr: Learning rate.
        momentum: Momentum of ``"momentum"``.
    """

    name: str
    lr: float
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise InvalidArgumentError(
                f"Unknown inner optimizer {self.name!r}; use one of {list(OPTIMIZERS)}."
            )

    def step(self, params: Params, grads: Params, state: dict[str, Any], step: int) -> tuple[Params, dict]:
        """One update; returns the new parameters and optimizer state (the inputs are not modified)."""
        out, new_state = {}, {}
        for k, p in params.items():
            g = grads[k]
            if self.name == "sgd":
                out[k] = torch.add(p, g, alpha=-self.lr)
            elif self.name == "momentum":
                buf = g if k not in state else state[k] * self.momentum + g
                new_state[k] = buf
                out[k] = torch.add(p, buf, alpha=-self.lr)
            else:
                m, v = state.get(k, (torch.zeros_like(p), torch.zeros_like(p)))
                m = torch.lerp(m, g, 1 - ADAM_BETAS[0])
                v = torch.addcmul(v * ADAM_BETAS[1], g, g, value=1 - ADAM_BETAS[1])
                new_state[k] = (m, v)
                bias1, bias2 = 1 - ADAM_BETAS[0] ** (step + 1), 1 - ADAM_BETAS[1] ** (step + 1)
                denom = safe_sqrt(v) / math.sqrt(bias2) + ADAM_EPS
                out[k] = torch.addcdiv(p, m, denom, value=-self.lr / bias1)
        return out, new_state


class LiveOptimizer:
    """The optimizer of a running inner loop as hooks see it (``ctx.optimizer``).

    Its ``state_dict`` / ``load_state_dict`` read and replace the loop's live state, as with a
    ``torch.optim`` optimizer (continual trajectory shifting re-trains a task and loads the state).
    """

    def __init__(self, optimizer: InnerOptimizer, state: dict[str, Any]) -> None:
        self.optimizer, self.state = optimizer, state

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.name, "state": _clone(self.state)}

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        self.state.clear()
        self.state.update(_clone(saved["state"]))


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    return value.detach().clone()


# ----- the one inner loop ---------------------------------------------------------------------
@dataclass
class Trajectory:
    """What :func:`inner_loop` returns.

    Attributes:
        params: The final parameters (stacked if the batch is).
        losses: Detached training losses: every step's minibatch loss, then (with ``final_loss``) the
            final full-set loss; ``(steps + 1,)``, or ``(steps + 1, B)`` stacked.
        states: ``{k: theta_k}`` for every step ``k`` that is a multiple of ``keep_every``.
        optimizer_state: The optimizer's final state.
        hessians: With ``linearize``, ``{k: v -> H(theta_k) v}`` of the training loss on step ``k``'s
            minibatch, for the kept steps (see :func:`linearization`).
    """

    params: Params
    losses: torch.Tensor
    states: dict[int, Params] = field(default_factory=dict)
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    hessians: dict[int, Callable[[Params], Params]] = field(default_factory=dict)


StepCallback = Callable[[int, torch.Tensor, Params, Params, dict], None]
EndCallback = Callable[[int, Params, dict], None]


def value_and_grad(
    loss: LossFn,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    batched: bool,
    create_graph: bool = False,
    transformed: bool = False,
) -> tuple[torch.Tensor, Params]:
    """The loss at ``params`` and its gradient (per task if stacked); differentiable if ``create_graph``.

    ``transformed``: the caller runs under ``torch.func`` transforms (``vmap(grad(...))`` around a
    whole inner loop), so the gradient is ``torch.func.grad_and_value``, differentiable by the outer
    transform.
    """
    if transformed:
        grads, value = grad_and_value(loss)(params, x, y)
        return value, grads
    if batched:
        if not create_graph:
            params = {k: v.detach() for k, v in params.items()}
        grads, value = vmap(grad_and_value(loss))(params, x, y)
        return value, grads
    leaves = {
        k: v if create_graph and v.requires_grad else v.detach().requires_grad_(True)
        for k, v in params.items()
    }
    value = loss(leaves, x, y)
    names = list(leaves)
    grads = torch.autograd.grad(
        value,
        [leaves[k] for k in names],
        create_graph=create_graph,
        allow_unused=True,
        materialize_grads=True,
    )
    return value, dict(zip(names, grads, strict=True))


def gradient_of(loss: LossFn, batched: bool) -> Callable[..., Any]:
    """``(params, x, y) -> grad loss`` (per task if stacked; ``params`` a dict or one flat tensor):
    ``vmap(grad(loss))`` stacked, ``torch.autograd.grad`` single (the faster form for one task)."""
    if batched:
        return vmap(grad(loss))

    def one(params: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        with torch.enable_grad():  # also under no_grad (an ODE solver's forward pass)
            if isinstance(params, torch.Tensor):
                leaf = params.detach().requires_grad_(True)
                return torch.autograd.grad(loss(leaf, x, y), leaf)[0]
            return value_and_grad(loss, params, x, y, batched=False)[1]

    return one


def linearization(
    loss: LossFn, at: Any, x: torch.Tensor, y: torch.Tensor, batched: bool
) -> tuple[torch.Tensor, Any, Callable[[Any], Any]]:
    """The loss at ``at``, its gradient, and its Hessian there as a map ``vector -> H @ vector``.

    Reverse over reverse (the Hessian is symmetric): the gradient's graph is kept, so every product
    at this point costs one backward pass. ``at`` is a parameter dict or one flat tensor (per task if
    stacked). Single layout: ``torch.autograd``; stacked: ``torch.func.vjp`` of
    ``vmap(grad_and_value(loss))``. The returned gradient is detached.
    """
    if batched:

        def gradient(p: Any) -> tuple[Any, tuple[Any, torch.Tensor]]:
            grads, value = vmap(grad_and_value(loss))(p, x, y)
            return grads, (grads, value)

        _, pullback, (grads, value) = vjp(gradient, at, has_aux=True)
        return value, _detached(grads), lambda vector: pullback(vector)[0]
    flat = isinstance(at, torch.Tensor)
    leaves = {"": at} if flat else dict(at)
    leaves = {k: v.detach().requires_grad_(True) for k, v in leaves.items()}
    names = list(leaves)
    with torch.enable_grad():
        value = loss(leaves[""] if flat else leaves, x, y)
        grads = torch.autograd.grad(
            value, [leaves[k] for k in names], create_graph=True, materialize_grads=True
        )
    live = [i for i, g in enumerate(grads) if g.requires_grad]  # a constant gradient's rows of H are 0

    def hessian(vector: Any) -> Any:
        vectors = [vector] if flat else [vector[k] for k in names]
        if not live:
            out = [torch.zeros_like(leaves[k]) for k in names]
        else:
            out = torch.autograd.grad(
                [grads[i] for i in live], [leaves[k] for k in names], grad_outputs=[vectors[i] for i in live],
                retain_graph=True, materialize_grads=True,
            )  # fmt: skip
        return out[0] if flat else dict(zip(names, out, strict=True))

    detached = [g.detach() for g in grads]
    return value.detach(), detached[0] if flat else dict(zip(names, detached, strict=True)), hessian


def _detached(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else {k: v.detach() for k, v in value.items()}


def inner_steps(
    loss: LossFn,
    params: Params,
    batch: TaskBatch,
    steps: int,
    optimizer: InnerOptimizer,
    *,
    create_graph: bool = False,
    keep_every: int = 0,
    prox: tuple[float, Params] | None = None,
    on_step: StepCallback | None = None,
    on_step_end: EndCallback | None = None,
    check: bool = True,
    state: dict[str, Any] | None = None,
    first_step: int = 0,
    final_loss: bool = True,
    transformed: bool = False,
    linearize: bool = False,
) -> Generator[int, None, Trajectory]:
    """:func:`inner_loop` as a generator that pauses after every step (yielding its index).

    Lets a driver advance several tasks one inner step at a time in one thread (continual
    trajectory shifting); the generator's return value is the :class:`Trajectory`.
    """
    state = {} if state is None else state  # updated in place: hooks may hold it (LiveOptimizer)
    if linearize and (create_graph or transformed or not keep_every):
        raise InvalidArgumentError(
            "linearize keeps the Hessians of the kept steps: pass keep_every > 0, without create_graph."
        )
    params, states, losses, hessians = dict(params), {}, [], {}
    for step in range(first_step, first_step + steps):
        kept = keep_every and step % keep_every == 0
        if kept:
            states[step] = {k: v.detach() for k, v in params.items()}
        x, y = batch.minibatch(step)
        if kept and linearize:  # the gradient's graph kept: the adjoint's backward pass reuses it
            value, grads, hessians[step] = linearization(loss, params, x, y, batch.batched)
        else:
            value, grads = value_and_grad(loss, params, x, y, batch.batched, create_graph, transformed)
        if check and not (batch.batched or transformed):
            finite_loss(value, batch.tasks[0], step)
        losses.append(value.detach())
        if prox is not None:  # iMAML's proximal term (reg / 2) ||u - theta||^2
            reg, theta = prox
            grads = {k: g + reg * (params[k] - theta[k]) for k, g in grads.items()}
        if on_step is not None:
            on_step(step, value.detach(), params, grads, state)
        with torch.set_grad_enabled(create_graph or transformed):
            params, new_state = optimizer.step(params, grads, state, step)
        state.clear()
        state.update(new_state)
        if on_step_end is not None:
            on_step_end(step, params, state)
        yield step
    if final_loss:
        with torch.no_grad():
            losses.append(per_task(loss, batch.batched)(params, batch.x_train, batch.y_train))
    history = torch.stack(losses)
    if check and not transformed:
        check_losses(batch, history)
    return Trajectory(params, history, states, state, hessians)


def inner_loop(*args: Any, **kwargs: Any) -> Trajectory:
    """Run ``steps`` inner steps from ``params`` on ``batch`` and return the :class:`Trajectory`.

    Args:
        loss: The per-task loss ``loss(params, x, y)`` (:func:`loss_function`).
        params: Start parameters (full dict of the model; stacked if ``batch`` is).
        batch: The task(s) and their minibatches (:func:`task_batch`).
        steps: Inner steps.
        optimizer: The :class:`InnerOptimizer`.
        create_graph: Keep the graph of every step (to differentiate the result w.r.t. ``params``).
        keep_every: Keep ``theta_k`` for every ``k`` divisible by it (0: none).
        linearize: Also keep those steps' Hessian maps (:attr:`Trajectory.hessians`), each from the
            step's own gradient computation (the exact adjoint's backward pass costs one backward per step).
        prox: ``(reg, theta)``: add ``reg * (u - theta)`` to every gradient (iMAML's inner problem).
        on_step: ``(step, loss, params, grads, state)`` after the gradient, before the update.
        on_step_end: ``(step, params, state)`` after the update (may shift ``params`` in place).
        check: Raise :class:`~metaenvs.errors.NonFiniteError` on a non-finite loss.
        state: The optimizer-state dict to use and update in place (default: a new one).
        first_step: Index of the first step (a segment of a longer loop: minibatches, Adam's step).
        final_loss: Also evaluate the final parameters on the whole training set (the curve's last point).
        transformed: The loop runs inside ``torch.func`` transforms (one task's layout under ``vmap`` /
            ``grad``): gradients by ``torch.func``, differentiable by the outer transform, no checks.
    """
    stepper = inner_steps(*args, **kwargs)
    while True:
        try:
            next(stepper)
        except StopIteration as done:
            return done.value
