"""Functional inner loops over explicit parameter dicts, for meta-learners that differentiate learning.

Everything here works on ``dict[str, Tensor]`` pytrees and the agent's
``functional_loss`` (``torch.func.functional_call`` underneath), so autograd can
see through the inner loop (MAML) or Hessian-vector products can be taken at any
point of it (iMAML, the adjoint methods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from agents.curves import LearningCurve
from agents.parameters import finite_loss
from metaenvs.seeding import torch_generator

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params], torch.Tensor]


def full_params(agent: Any, init: Params) -> Params:
    """The agent's parameters with the meta-learned ones replaced by ``init`` (others detached)."""
    params = {k: v.detach() for k, v in agent.model.named_parameters()}
    params.update(init)
    return params


def train_batches(agent: Any, task: Any, steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The minibatches ``agent.learn(task, steps, seed=seed)`` would use, in order."""
    data = agent.data(task)
    generator = torch_generator(seed)
    return [agent.minibatch(data, generator) for _ in range(steps)]


def loss_on(agent: Any, task: Any, x: torch.Tensor, y: torch.Tensor) -> LossFn:
    """``params -> loss`` on one batch, over the meta-learned subset merged into the agent's parameters."""
    base = {k: v.detach() for k, v in agent.model.named_parameters()}
    loss_name = agent.data(task).loss

    def f(params: Params) -> torch.Tensor:
        return agent.functional_loss({**base, **params}, x, y, loss_name)

    return f


def query_loss(agent: Any, task: Any) -> LossFn:
    """``params -> loss`` on the task's query set (the outer / validation loss)."""
    x, y = agent.data(task).query()
    return loss_on(agent, task, x, y)


def hvp(f: LossFn, params: Params, vector: Params) -> Params:
    """Hessian-vector product ``H(params) @ vector`` (reverse-over-reverse; no graph is kept)."""
    names = list(params)
    leaves = {k: params[k].detach().requires_grad_(True) for k in names}
    grads = torch.autograd.grad(f(leaves), [leaves[k] for k in names], create_graph=True)
    # grad of <g, v> w.r.t. the parameters, seeded with v: one backward pass, no scalar product needed
    out = torch.autograd.grad(
        grads, [leaves[k] for k in names], grad_outputs=[vector[k] for k in names], allow_unused=True
    )
    return {k: torch.zeros_like(params[k]) if o is None else o for k, o in zip(names, out, strict=True)}


def gradient_descent(
    agent: Any,
    task: Any,
    init: Params,
    steps: int,
    lr: float,
    seed: int,
    create_graph: bool = False,
    keep_every: int = 0,
) -> tuple[Params, LearningCurve, dict]:
    """``steps`` plain gradient-descent steps from ``init``; differentiable if ``create_graph``.

    Returns:
        Final parameters, the learning curve, and ``{k: theta_k}`` for every ``k`` that is a
        multiple of ``keep_every`` (none if 0).
    """
    curve = LearningCurve(task.id, "inner_step", "train_loss")
    params, states = dict(init), {}
    for step, (x, y) in enumerate(train_batches(agent, task, steps, seed)):
        if keep_every and step % keep_every == 0:
            states[step] = {k: v.detach() for k, v in params.items()}
        f = loss_on(agent, task, x, y)
        if not create_graph:
            params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = f(params)
        curve.append(step, finite_loss(loss, task, step))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        params = {k: v - lr * g for (k, v), g in zip(params.items(), grads, strict=True)}
    data = agent.data(task)
    final = loss_on(agent, task, data.x_train, data.y_train)(params)
    curve.append(steps, finite_loss(final, task, steps))
    return params, curve, states
