"""Batched inner loops: all the tasks of a meta-batch trained at once with ``torch.func.vmap``.

The parameters of ``B`` tasks are stacked along a leading dimension. One call of
``vmap(grad_and_value(loss))`` gives every task's loss and gradient, and the
inner optimizer (SGD, SGD with momentum, Adam) is written functionally on the
stacked tensors, so every task keeps its own optimizer state. Every task draws
its minibatches from its own generator exactly as :meth:`SupervisedAgent.learn`
does, so a batched meta-batch agrees with the per-task loop to floating-point
tolerance (not bitwise: the arithmetic is grouped differently).

It serves small models (MLPs, conv4): the stacked parameters, gradients and
optimizer state of all tasks live in memory at once. All tasks of a batch must
have data of the same shapes and the same loss (true of every registered
supervised family with a fixed number of shots).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, grad_and_value, vmap

from agents.curves import LearningCurve, curves_from_rows
from agents.hooks import (
    BatchEndContext,
    BatchInnerStepContext,
    BatchStartContext,
    BatchStepEndContext,
    Hook,
    HookList,
)
from agents.models import reset_parameters
from agents.parameters import safe_sqrt
from metaenvs.errors import InvalidArgumentError, NonFiniteError
from metaenvs.metrics import get_loss
from metaenvs.seeding import torch_generator
from metaenvs.validation import positive_int

Params = dict[str, torch.Tensor]
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


@dataclass
class TaskBatch:
    """The data of the tasks of a meta-batch, stacked along a leading task dimension.

    Attributes:
        tasks: The tasks.
        x_train: Training inputs, ``(B, n, *input_shape)``.
        y_train: Training targets, ``(B, n, ...)``.
        x_query: Query inputs (the outer loss of meta-learners).
        y_query: Query targets.
        loss: Name of the (common) training loss.
    """

    tasks: list[Any]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor
    loss: str

    @property
    def size(self) -> int:
        return len(self.tasks)


def stack_tasks(agent: Any, tasks: Sequence[Any]) -> TaskBatch:
    """Load and stack the data of ``tasks``; raise if their shapes or losses differ."""
    if not tasks:
        raise InvalidArgumentError("A batched inner loop needs at least one task; got an empty list.")
    datas = [agent.data(task) for task in tasks]
    first = datas[0]
    for task, data in zip(tasks, datas, strict=True):
        shapes = (data.x_train.shape, data.y_train.shape, data.query()[0].shape, data.query()[1].shape)
        ref = (first.x_train.shape, first.y_train.shape, first.query()[0].shape, first.query()[1].shape)
        if shapes != ref or data.loss != first.loss:
            raise InvalidArgumentError(
                f"Batched mode stacks the tasks of a meta-batch, so their data must have one shape and one "
                f"loss; task {task.id!r} has shapes {[tuple(s) for s in shapes]} and loss {data.loss!r}, "
                f"task {tasks[0].id!r} has {[tuple(s) for s in ref]} and {first.loss!r}. Use "
                "SupervisedAgent(batched=False) for this distribution."
            )
    queries = [d.query() for d in datas]
    return TaskBatch(
        list(tasks),
        torch.stack([d.x_train for d in datas]),
        torch.stack([d.y_train for d in datas]),
        torch.stack([q[0] for q in queries]),
        torch.stack([q[1] for q in queries]),
        first.loss,
    )


def minibatch_indices(agent: Any, batch: TaskBatch, steps: int, seeds: Sequence[int]) -> torch.Tensor | None:
    """Indices ``(B, steps, batch_size)`` of every task's minibatches, drawn as ``agent.minibatch`` draws.

    ``None`` when every step uses the whole training set.
    """
    n = batch.x_train.shape[1]
    if agent.batch_size is None or agent.batch_size >= n:
        return None
    rows = []
    for seed in seeds:
        generator = torch_generator(seed)
        rows.append(
            torch.stack([torch.randperm(n, generator=generator)[: agent.batch_size] for _ in range(steps)])
        )
    return torch.stack(rows).to(batch.x_train.device)


def gather_rows(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """``x[b, idx[b]]`` for every task ``b`` (``x`` itself when ``idx`` is ``None``)."""
    if idx is None:
        return x
    return x[torch.arange(x.shape[0], device=x.device)[:, None], idx]


def optimizer_step(
    name: str,
    params: Params,
    grads: Params,
    state: dict[str, Any],
    lr: float,
    momentum: float,
    step: int,
) -> tuple[Params, dict[str, Any]]:
    """One step of ``"sgd"``, ``"momentum"`` or ``"adam"`` written functionally (no in-place update).

    Mirrors ``torch.optim.SGD`` (dampening 0, no Nesterov) and ``torch.optim.Adam``
    (PyTorch's defaults) update by update; works on stacked or single-task tensors,
    and is differentiable.
    """
    out, new_state = {}, {}
    for k, p in params.items():
        g = grads[k]
        if name == "sgd":
            out[k] = torch.add(p, g, alpha=-lr)
        elif name == "momentum":
            buf = g if k not in state else state[k] * momentum + g
            new_state[k] = buf
            out[k] = torch.add(p, buf, alpha=-lr)
        else:
            m, v = state.get(k, (torch.zeros_like(p), torch.zeros_like(p)))
            m = torch.lerp(m, g, 1 - ADAM_BETAS[0])
            v = torch.addcmul(v * ADAM_BETAS[1], g, g, value=1 - ADAM_BETAS[1])
            new_state[k] = (m, v)
            bias1, bias2 = 1 - ADAM_BETAS[0] ** (step + 1), 1 - ADAM_BETAS[1] ** (step + 1)
            denom = safe_sqrt(v) / math.sqrt(bias2) + ADAM_EPS  # finite derivative at dead units
            out[k] = torch.addcdiv(p, m, denom, value=-lr / bias1)
    return out, new_state


def loss_function(agent: Any, loss: str) -> Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(params, x, y) -> loss`` of one task, over the full parameter dict of the agent's model."""
    loss_fn = get_loss(loss)
    model = agent.model

    def f(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, params, (x,)), y)

    return f


def check_losses(tasks: Sequence[Any], losses: torch.Tensor) -> list[list[float]]:
    """``losses`` ``(steps, B)`` as per-task lists; raise naming the first non-finite task and step."""
    values = losses.detach().double().cpu()
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        step, index = (int(v) for v in bad[0])
        task = tasks[index]
        raise NonFiniteError(
            f"Loss became {float(values[step, index])} at inner step {step} of task {task.id!r} "
            f"({task.dist_id}) in a batched meta-batch. The batch was stopped; lower the inner "
            "learning rate or check the data."
        )
    return values.T.tolist()


class BatchedInnerLoop:
    """The batched form of :meth:`SupervisedAgent.learn` (built by the agent; see the module docstring)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._models: list[torch.nn.Module] = []

    def task_models(self, seeds: Sequence[int], fresh_starts: bool = False) -> list[torch.nn.Module]:
        """One module per task where hooks write its start: the agent's current parameters, or with
        ``fresh_starts`` the agent's initialization for the task's seed (``agent.reset(seed)``)."""
        while len(self._models) < len(seeds):
            self._models.append(copy.deepcopy(self.agent.model))
        models = self._models[: len(seeds)]
        source = dict(self.agent.model.named_parameters())
        with torch.no_grad():
            for model, seed in zip(models, seeds, strict=True):
                if fresh_starts:
                    device = next(model.parameters()).device
                    reset_parameters(model.to("cpu"), torch_generator(seed)).to(device)
                    continue
                for name, p in model.named_parameters():
                    p.copy_(source[name])
        return models

    def learn(
        self,
        tasks: Sequence[Any],
        steps: int,
        hooks: Sequence[Hook] = (),
        seeds: Sequence[int] | None = None,
        fresh_starts: bool = False,
    ) -> list[LearningCurve]:
        """Train every task of ``tasks`` for ``steps`` inner steps at once, firing batched hook events.

        Returns:
            One curve per task, as :meth:`SupervisedAgent.learn` returns it.
        """
        agent, steps = self.agent, positive_int("steps", steps)
        seeds = list(range(len(tasks))) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != len(tasks):
            raise InvalidArgumentError(f"Got {len(seeds)} seeds for {len(tasks)} tasks; pass one per task.")
        batch = stack_tasks(agent, tasks)
        hook = HookList(hooks)
        hook.attach(agent)
        agent.model.train()
        models = self.task_models(seeds, fresh_starts)
        hook.on_batch_start(BatchStartContext(agent, batch.tasks, models, seeds, steps))
        names = [n for n, _ in agent.model.named_parameters()]
        params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n in names}
        idx = minibatch_indices(agent, batch, steps, seeds)
        f = loss_function(agent, batch.loss)
        grad_fn = vmap(grad_and_value(f))
        state: dict[str, Any] = {}
        losses = []
        for step in range(steps):
            step_idx = None if idx is None else idx[:, step]
            x, y = gather_rows(batch.x_train, step_idx), gather_rows(batch.y_train, step_idx)
            grads, loss = grad_fn(params, x, y)
            losses.append(loss)
            hook.on_batch_inner_step(
                BatchInnerStepContext(agent, batch.tasks, step, loss, params, grads, state)
            )
            params, state = optimizer_step(
                agent.optimizer_name, params, grads, state, agent.lr, agent.momentum, step
            )
            hook.on_batch_step_end(BatchStepEndContext(agent, batch.tasks, step, params, state))
        with torch.no_grad():
            final = vmap(f)(params, batch.x_train, batch.y_train)
        values = check_losses(batch.tasks, torch.stack([*losses, final]))
        curves = curves_from_rows(batch.tasks, values)
        self._keep_last(params)
        hook.on_batch_end(BatchEndContext(agent, batch.tasks, params, curves, final))
        return curves

    @torch.no_grad()
    def _keep_last(self, params: Mapping[str, torch.Tensor]) -> None:
        """Leave the last task's final parameters in the agent's model, as the per-task loop does."""
        for name, p in self.agent.model.named_parameters():
            p.copy_(params[name][-1])
