"""The data of a task batch: one task, or a meta-batch stacked along a leading task dimension.

:class:`TaskBatch` holds the training and query sets and every inner step's minibatch indices;
:func:`task_batch` builds it through an agent; :func:`loss_function` is a model's pure per-task loss
``loss(params, x, y)``; :func:`per_task` maps a function over the tasks of a stack. The inner loop
that trains on them is :mod:`agents.functional`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call, vmap

from metaenvs.errors import InvalidArgumentError, NonFiniteError
from metaenvs.metrics import get_loss
from metaenvs.seeding import torch_generator

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TaskBatch:
    """The data of one task (``batched=False``) or of a meta-batch stacked along dimension 0.

    Attributes:
        tasks: The tasks.
        x_train: Training inputs, ``(n, *input_shape)`` or ``(B, n, *input_shape)``.
        y_train: Training targets.
        x_query: Query inputs (the outer loss of meta-learners).
        y_query: Query targets.
        loss: Name of the (common) training loss.
        batched: Whether the tensors carry the leading task dimension.
        indices: Minibatch indices of every step, ``(steps, minibatch)`` or ``(B, steps, minibatch)``;
            ``None`` when every step uses the whole training set.
        seeds: Every task's seed (its minibatch order; a fresh start's parameters).
    """

    tasks: list[Any]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor
    loss: str
    batched: bool = True
    indices: torch.Tensor | None = None
    seeds: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.tasks)

    def minibatch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training minibatch of inner step ``step`` (of every task, if stacked)."""
        if self.indices is None:
            return self.x_train, self.y_train
        if not self.batched:
            idx = self.indices[step]
            return self.x_train[idx], self.y_train[idx]
        idx = self.indices[:, step]
        rows = torch.arange(self.x_train.shape[0], device=self.x_train.device)[:, None]
        return self.x_train[rows, idx], self.y_train[rows, idx]


def task_batch(
    agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int], batched: bool = True
) -> TaskBatch:
    """Load ``tasks`` through ``agent.data`` and draw every step's minibatch as the agent does.

    Every task draws ``torch.randperm(n)[:minibatch]`` per step from its own generator (seeded with
    its seed), so a task's minibatches do not depend on the layout or on the other tasks.

    Raises:
        InvalidArgumentError: If there are no tasks, a single layout gets several, the seeds do not
            match the tasks, or stacked tasks differ in shapes or loss.
    """
    if not tasks:
        raise InvalidArgumentError("An inner loop needs at least one task; got an empty list.")
    if len(seeds) != len(tasks):
        raise InvalidArgumentError(f"Got {len(seeds)} seeds for {len(tasks)} tasks; pass one per task.")
    if not batched and len(tasks) != 1:
        raise InvalidArgumentError(f"batched=False trains one task at a time; got {len(tasks)} tasks.")
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
    n, size = first.x_train.shape[0], agent.batch_size
    indices = None
    if size is not None and size < n:
        rows = []
        for seed in seeds:
            generator = torch_generator(int(seed))
            rows.append(torch.stack([torch.randperm(n, generator=generator)[:size] for _ in range(steps)]))
        indices = torch.stack(rows).to(first.x_train.device)
    if not batched:
        x_query, y_query = first.query()
        return TaskBatch(
            list(tasks), first.x_train, first.y_train, x_query, y_query, first.loss, False,
            None if indices is None else indices[0], [int(s) for s in seeds],
        )  # fmt: skip
    queries = [d.query() for d in datas]
    return TaskBatch(
        list(tasks),
        torch.stack([d.x_train for d in datas]),
        torch.stack([d.y_train for d in datas]),
        torch.stack([q[0] for q in queries]),
        torch.stack([q[1] for q in queries]),
        first.loss,
        True,
        indices,
        [int(s) for s in seeds],
    )


def loss_function(model: torch.nn.Module, loss: str) -> LossFn:
    """``(params, x, y) -> loss`` of one task, over the full parameter dict of ``model``.

    A model without tied weights skips ``functional_call``'s untying pass (a fifth of a small
    model's call).
    """
    loss_fn = get_loss(loss)
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    tied = len(names) != len(dict(model.named_parameters()))

    def f(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, params, (x,), tie_weights=tied), y)

    return f


def per_task(fn: Callable, batched: bool, in_dims: Any = 0) -> Callable:
    """``fn`` mapped over the leading task dimension if ``batched``, else ``fn`` itself."""
    return vmap(fn, in_dims=in_dims) if batched else fn


def check_losses(batch: TaskBatch, losses: torch.Tensor) -> list[list[float]]:
    """``losses`` ``(steps, B)`` or ``(steps,)`` as per-task lists; raise naming a non-finite task, step."""
    values = losses.detach().double().cpu()
    if values.dim() == 1:
        values = values[:, None]
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        step, index = (int(v) for v in bad[0])
        task = batch.tasks[index]
        raise NonFiniteError(
            f"Loss became {float(values[step, index])} at inner step {step} of task {task.id!r} "
            f"({task.dist_id}){' in a batched meta-batch' if batch.batched else ''}. The "
            f"{'batch' if batch.batched else 'task'} was stopped; lower the inner learning rate or check "
            "the data."
        )
    return values.T.tolist()
