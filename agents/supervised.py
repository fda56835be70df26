"""The supervised agent: a model, a loss and an inner optimizer that learn one task."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from agents.curves import LearningCurve
from agents.functional import OPTIMIZERS, InnerOptimizer, LiveOptimizer, inner_steps
from agents.hooks import (
    Capabilities,
    Hook,
    HookList,
    InnerStepContext,
    StepEndContext,
    TaskEndContext,
    TaskStartContext,
    drain,
)
from agents.models import build_model, reset_parameters
from agents.parameters import copy_into
from agents.task_data import LossFn, TaskBatch, loss_function, task_batch
from metaenvs.core import SupervisedData, Task
from metaenvs.errors import InvalidArgumentError, WrongDistributionError
from metaenvs.metrics import get_loss, get_metric
from metaenvs.seeding import torch_generator
from metaenvs.validation import non_negative_float, one_of, positive_int

DEFAULT_MODEL = {"type": "mlp", "hidden": [40, 40], "activation": "tanh"}


class SupervisedAgent:
    """Learns one supervised task from the current parameters of :attr:`model`.

    Args:
        input_shape: Shape of one input.
        n_outputs: Output width (number of classes for classification).
        model: A module to train; built from ``model_spec`` when omitted.
        model_spec: JSON model description (default: MLP with 2x40 tanh).
        optimizer: ``"sgd"``, ``"momentum"`` (SGD with ``momentum``) or ``"adam"``.
        lr: Inner learning rate.
        momentum: Momentum of the ``"momentum"`` optimizer.
        batch_size: Minibatch size per inner step; ``None`` uses the whole training set.
        dtype: Floating-point type of the model and data (use ``torch.float64`` for exact checks).
        seed: Seed of the initial parameters.
        device: Torch device of the model and data (``"cpu"``, ``"cuda"``).
        batched: Also train the tasks of a meta-batch at once with :meth:`learn_batch`
            (``torch.func.vmap`` over stacked parameters; for small models). The driver
            then runs every meta-batch this way.
    """

    capabilities = Capabilities(first_order=True, differentiable=True, batched=False, stepwise=True)
    step_unit = "inner_steps"

    def __init__(
        self,
        input_shape: Sequence[int],
        n_outputs: int,
        model: nn.Module | None = None,
        model_spec: Mapping[str, Any] | None = None,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        batch_size: int | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        device: str = "cpu",
        batched: bool = False,
    ) -> None:
        self.batched = bool(batched)
        self.capabilities = Capabilities(
            first_order=True, differentiable=True, batched=self.batched, stepwise=True
        )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_outputs = positive_int("n_outputs", n_outputs)
        self.optimizer_name = one_of("optimizer", optimizer, OPTIMIZERS)
        self.lr = non_negative_float("lr", lr)
        self.momentum = non_negative_float("momentum", momentum)
        self.batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        self.dtype = dtype
        self.model_spec = dict(model_spec or DEFAULT_MODEL)
        self.model = model if model is not None else build_model(self.model_spec, self.input_shape, n_outputs)
        self.device = torch.device(device)
        self.model.to(dtype)
        if model is None:
            self.reset(seed)
        self.model.to(self.device)
        self._data_cache: OrderedDict[tuple[str, str], SupervisedData] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles (Ray workers, lockstep replicas) leave the data cache behind."""
        state = dict(self.__dict__)
        state["_data_cache"] = OrderedDict()
        state["_batched_loop"] = None
        state["_fresh_model"] = None
        return state

    @classmethod
    def for_distribution(cls, dist: Any, seed: int = 0, **overrides: Any) -> SupervisedAgent:
        """Build the agent a distribution's protocol prescribes (shapes read from one test task)."""
        recipe = {k: v for k, v in dist.protocol.agent.items() if k not in ("type", "model")}
        model = dist.protocol.agent.get("model", dist.default_model)
        data = dist.tasks(dist.protocol.split)[0].load()
        kwargs = {"model_spec": dict(model), **recipe, **overrides}
        return cls(data.input_shape, data.n_outputs, seed=seed, **kwargs)

    def hyperparameters(self) -> dict[str, Any]:
        """The agent's settings, as recorded in initialization cards and results."""
        return {
            "type": "supervised",
            "model_spec": self.model_spec,
            "optimizer": self.optimizer_name,
            "lr": self.lr,
            "momentum": self.momentum,
            "batch_size": self.batch_size,
            "dtype": str(self.dtype).removeprefix("torch."),
            **({"batched": True} if self.batched else {}),
        }

    # ----- parameters -----------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Re-initialise :attr:`model` from ``seed`` (a from-scratch start)."""
        device = next(self.model.parameters()).device
        reset_parameters(self.model.to("cpu"), torch_generator(seed))  # CPU generator: same on every device
        self.model.to(device)

    def initial_parameters(self, seed: int) -> dict[str, torch.Tensor]:
        """The parameters :meth:`reset` would give for ``seed``, without touching :attr:`model`."""
        if getattr(self, "_fresh_model", None) is None:
            self._fresh_model = copy.deepcopy(self.model).to("cpu")
        reset_parameters(self._fresh_model, torch_generator(seed))
        device = next(self.model.parameters()).device
        return {k: v.detach().to(device, copy=True) for k, v in self._fresh_model.named_parameters()}

    def set_parameters(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Write an initialization (all parameters or a named subset) into :attr:`model`."""
        copy_into(self.model, tensors)

    @property
    def inner_optimizer(self) -> InnerOptimizer:
        """The inner optimizer as the one functional update (:class:`agents.functional.InnerOptimizer`)."""
        return InnerOptimizer(self.optimizer_name, self.lr, self.momentum)

    # ----- data -----------------------------------------------------------------------
    def data(self, task: Task) -> SupervisedData:
        """The task's tensors in the agent's dtype, checked against the model's shapes (cached)."""
        key = (task.dist_id, task.id)
        if key in self._data_cache:
            self._data_cache.move_to_end(key)
            return self._data_cache[key]
        data = task.load().to(self.dtype, self.device)
        if tuple(data.input_shape) != self.input_shape or data.n_outputs != self.n_outputs:
            raise WrongDistributionError(
                f"Task {task.id!r} of {task.dist_id} has inputs {tuple(data.input_shape)} and "
                f"{data.n_outputs} outputs, but this agent was built for inputs {self.input_shape} and "
                f"{self.n_outputs} outputs. Build the agent with SupervisedAgent.for_distribution(dist)."
            )
        self._data_cache[key] = data
        if len(self._data_cache) > 512:
            self._data_cache.popitem(last=False)
        return data

    def task_batch(
        self, tasks: Sequence[Task], steps: int, seeds: Sequence[int], batched: bool = True
    ) -> TaskBatch:
        """The tasks' data and every step's minibatch, for the functional inner loop (stacked if
        ``batched``; see :func:`agents.task_data.task_batch`)."""
        return task_batch(self, tasks, steps, seeds, batched)

    def loss_function(self, loss: str) -> LossFn:
        """``(params, x, y) -> loss`` of one task over the model's full parameter dict."""
        return loss_function(self.model, loss)

    # ----- learning -------------------------------------------------------------------
    def learn(self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0) -> LearningCurve:
        """Train :attr:`model` on ``task`` for ``steps`` inner steps, firing ``hooks``.

        Args:
            task: A supervised task.
            steps: Number of optimizer steps (> 0).
            hooks: Hooks (meta-learners) reacting to the inner loop.
            seed: Seed of the minibatch order.

        Returns:
            The training loss at every step, plus the final full-training-set loss (``steps + 1`` points).

        Raises:
            NonFiniteError: If a loss becomes NaN or Inf (the task stops; hooks see no end event).
        """
        return drain(self.learn_steps(task, steps, hooks, seed))

    def learn_steps(
        self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0
    ) -> Generator[int, None, LearningCurve]:
        """:meth:`learn` as a generator that pauses after every inner step (yielding its index).

        Lets a driver advance several tasks one inner step at a time in one thread
        (continual trajectory shifting); the generator's return value is the curve.
        """
        steps = positive_int("steps", steps)
        batch = self.task_batch([task], steps, [seed], batched=False)
        hook = HookList(hooks)
        hook.attach(self)
        self.model.train()
        hook.on_task_start(TaskStartContext(self, task, self.model, seed, steps))
        optimizer, state = self.inner_optimizer, {}
        live = LiveOptimizer(optimizer, state)

        def on_step(step: int, loss: torch.Tensor, params: Any, grads: Any, state: Any) -> None:
            hook.on_inner_step(InnerStepContext(self, task, step, loss, params, grads, live, snapshot=True))

        def on_step_end(step: int, params: Any, state: Any) -> None:
            hook.on_step_end(StepEndContext(self, task, step, params, live))

        # owned by the loop: hooks keep its step tensors as snapshots; copy_into below writes the model
        start = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        trajectory = yield from inner_steps(
            self.loss_function(batch.loss), start, batch, steps, optimizer,
            on_step=on_step, on_step_end=on_step_end, state=state,
        )  # fmt: skip
        copy_into(self.model, trajectory.params)
        values = trajectory.losses.double().tolist()
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        for step, value in enumerate(values):
            curve.append(step, value)
        params = dict(self.model.named_parameters())
        hook.on_task_end(TaskEndContext(self, task, params, curve, trajectory.losses[-1]))
        return curve

    def learn_batch(
        self,
        tasks: Sequence[Task],
        steps: int,
        hooks: Sequence[Hook] = (),
        seeds: Sequence[int] | None = None,
        fresh_starts: bool = False,
    ) -> list[LearningCurve]:
        """Train the model on every task of ``tasks`` at once (``vmap``), each from its own start.

        Hooks get the batched events (see :mod:`agents.hooks`); the result agrees with
        ``[learn(t, steps, hooks, s) for t, s in zip(tasks, seeds)]`` to float tolerance when every
        task starts from parameters the hooks set. Afterwards :attr:`model` holds the last task's
        final parameters, as after the per-task loop.

        Args:
            tasks: Supervised tasks whose data have one shape and one loss.
            steps: Inner steps of every task.
            hooks: Hooks (meta-learners).
            seeds: Minibatch seed of every task (default ``0, 1, ...``).
            fresh_starts: Start every task from :meth:`reset` with its seed (before the hooks write
                the initialization) instead of from :attr:`model`'s current parameters.

        Returns:
            One learning curve per task.
        """
        from agents.batched import BatchedInnerLoop

        if getattr(self, "_batched_loop", None) is None:
            self._batched_loop = BatchedInnerLoop(self)
        return self._batched_loop.learn(tasks, steps, hooks, seeds, fresh_starts)

    @torch.no_grad()
    def evaluate(self, task: Task, seed: int = 0, curve: Any = None) -> dict[str, float]:
        """Score :attr:`model` on the task's held-out data: ``{"loss": ..., metric: ...}``.

        ``seed`` is accepted for uniformity with RL agents; the score is deterministic.
        """
        data = self.data(task)
        pred = self.model(data.x_test)
        metric_fn, _ = get_metric(data.metric)
        return {
            "loss": float(get_loss(data.loss)(pred, data.y_test)),
            data.metric: float(metric_fn(pred, data.y_test)),
        }

    # ----- functional form (for algorithms that differentiate through learning) -------------
    def named_parameters(self) -> dict[str, torch.Tensor]:
        """The model's live parameters by name."""
        return dict(self.model.named_parameters())

    def functional_loss(
        self, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, loss: str
    ) -> torch.Tensor:
        """Loss of the model evaluated with ``params`` (a dict that may carry autograd history).

        Parameters missing from ``params`` are taken from the module, so a subset can be
        meta-learned.
        """
        pred = functional_call(self.model, dict(params), (x,), strict=False)
        return get_loss(loss)(pred, y)

    def task_loss(self, params: Mapping[str, torch.Tensor], task: Task, part: str = "train") -> torch.Tensor:
        """Functional loss of ``params`` on the ``"train"``, ``"query"`` or ``"test"`` data of ``task``."""
        data = self.data(task)
        parts = {
            "train": (data.x_train, data.y_train),
            "test": (data.x_test, data.y_test),
            "query": data.query(),
        }
        if part not in parts:
            raise InvalidArgumentError(f"part must be one of {list(parts)}, got {part!r}.")
        return self.functional_loss(params, *parts[part], data.loss)
