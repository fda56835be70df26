"""The meta-learner base class: a hook that owns an initialization and updates it.

Events (fired by the agent, in this order, for each task of a meta-batch)::

    on_task_start(ctx)   write the current initialization into the agent
    on_inner_step(ctx)   after backward, before optimizer.step (loss, params, grads)
    on_task_end(ctx)     final parameters, curve

and then, once per meta-batch, the driver calls ``meta_update()``.

Subclasses accumulate a *meta-gradient* (a descent direction for the
initialization) in :meth:`_accumulate`-style event handlers and return it from
:meth:`meta_gradient`; the base class applies it with any torch optimizer, with
an optional linear annealing of the meta learning rate (Reptile's schedule).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from agents.hooks import Hook, TaskEndContext, TaskStartContext
from agents.parameters import check_finite, copy_into, snapshot
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, NonFiniteError
from metaenvs.validation import non_negative_float, one_of

META_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
}
SCHEDULES = ("constant", "linear")


class MetaLearner(Hook):
    """Base class of meta-learners.

    Args:
        meta_lr: Meta learning rate (meta step size).
        meta_optimizer: ``"sgd"``, ``"momentum"`` or ``"adam"``.
        schedule: ``"constant"``, or ``"linear"`` from ``meta_lr`` to ``meta_lr_final`` over the run.
        meta_lr_final: End point of the linear schedule.
        params: Names (or name prefixes) of the parameters to meta-learn; ``None`` for all.
    """

    name: ClassVar[str] = "base"
    kind: ClassVar[str] = "callback"
    """How the learner meets the inner loop: ``"callback"``, a hook that the agent's own loop calls
    (every first-order learner), or ``"trajectory"``, a learner that runs the functional inner loop
    itself to differentiate it (:class:`~baselines.second_order.SecondOrderLearner`)."""
    lockstep: ClassVar[bool] = False
    """True for algorithms that need all tasks of a meta-batch to advance one inner step at a time."""
    accumulators: ClassVar[tuple[str, ...]] = ()
    """Attributes that hold what the current meta-batch contributed (see :meth:`contribution`)."""
    required_capabilities: tuple[str, ...] = ("first_order",)
    updates_initialization: ClassVar[bool] = True
    """Whether :meth:`meta_update` moves the initialization (``Scratch`` does not)."""

    def __init__(
        self,
        meta_lr: float = 1.0,
        meta_optimizer: str = "sgd",
        schedule: str = "constant",
        meta_lr_final: float = 0.0,
        params: Sequence[str] | None = None,
    ) -> None:
        self.meta_lr = non_negative_float("meta_lr", meta_lr)
        if self.meta_lr > torch.finfo(torch.float32).max:
            raise InvalidArgumentError(
                f"meta_lr {meta_lr!r} is beyond float32 (3.4e38): no parameter can be stepped by it; meta "
                "step sizes are usually 1e-4 to 1."
            )
        self.meta_lr_final = non_negative_float("meta_lr_final", meta_lr_final)
        self.meta_optimizer_name = one_of("meta_optimizer", meta_optimizer, META_OPTIMIZERS)
        self.schedule = one_of("schedule", schedule, SCHEDULES)
        self.param_prefixes = None if params is None else list(params)
        self.init: dict[str, torch.Tensor] = {}
        self.meta_optimizer: torch.optim.Optimizer | None = None
        self.meta_step = 0
        self.total_meta_steps = 1

    # ----- set-up -----------------------------------------------------------------------
    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        """Take the agent's current parameters (or the selected subset) as the initialization."""
        self.attach(agent)
        names = [n for n, _ in agent.model.named_parameters() if self._selected(n)]
        if not names:
            raise InvalidArgumentError(
                f"No parameter matches params={self.param_prefixes}; the model has "
                f"{[n for n, _ in agent.model.named_parameters()][:8]}..."
            )
        self.init = snapshot(agent.model, names)
        self.meta_optimizer = META_OPTIMIZERS[self.meta_optimizer_name](
            list(self.init.values()), lr=self.meta_lr
        )
        self.total_meta_steps = max(1, int(total_meta_steps))
        self.meta_step = 0
        self.reset_accumulators()

    def _selected(self, name: str) -> bool:
        return self.param_prefixes is None or any(
            name == p or name.startswith(p + ".") for p in self.param_prefixes
        )

    def hyperparameters(self) -> dict[str, Any]:
        """Settings recorded in the initialization card."""
        return {
            "meta_lr": self.meta_lr,
            "meta_optimizer": self.meta_optimizer_name,
            "schedule": self.schedule,
            "meta_lr_final": self.meta_lr_final,
            "params": self.param_prefixes,
        }

    def current_meta_lr(self) -> float:
        """Meta learning rate of the next meta-update (linear: Reptile's ``frac_done`` schedule)."""
        if self.schedule == "constant":
            return self.meta_lr
        frac = min(1.0, self.meta_step / self.total_meta_steps)
        return (1 - frac) * self.meta_lr + frac * self.meta_lr_final

    # ----- events ------------------------------------------------------------------------
    def on_task_start(self, ctx: TaskStartContext) -> None:
        if not self.init:
            raise InvalidArgumentError(f"{type(self).__name__} was not initialized; call initialize(agent).")
        copy_into(ctx.model, self.init)

    def on_task_end(self, ctx: TaskEndContext) -> None:
        """Subclasses accumulate their contribution here (or in ``on_inner_step``)."""

    # ----- meta-update -------------------------------------------------------------------
    def reset_accumulators(self) -> None:
        """Forget everything accumulated for the current meta-batch."""

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        """Descent direction for the initialization from the current meta-batch (``None``: no update)."""
        return None

    def contribution(self) -> dict[str, Any]:
        """What was accumulated since :meth:`reset_accumulators`: one task's share of the meta-batch.

        The driver runs every task from reset accumulators, in this process or in a Ray
        worker, and :meth:`merge` adds the contributions up in task order, so the local and
        the distributed executors do the same arithmetic and give the same bits.
        """
        return {name: getattr(self, name) for name in self.accumulators}

    def merge(self, contribution: Mapping[str, Any]) -> None:
        """Add one task's :meth:`contribution` to the accumulators."""
        for name, value in contribution.items():
            setattr(self, name, _merged(getattr(self, name), value))

    @property
    def starts_tasks_fresh(self) -> bool:
        """Whether every task starts from the agent's init for the task's seed before the hooks write
        the initialization: true when only a subset is meta-learned (``params=[...]``), so the other
        parameters never carry over from the previous task and a task's result depends only on the
        initialization and its seed (what makes resumed, batched and distributed runs agree)."""
        return self.param_prefixes is not None

    def supports_batched(self) -> bool:
        """Whether a batched agent may run this learner's meta-batches at once (``learn_batch``).

        Hook-based learners receive the batched events (by default split into per-task
        events); learners that must see one task at a time return ``False`` and the driver
        runs their tasks one by one.
        """
        return True

    def begin_meta_batch(self, size: int) -> None:
        """Called by the driver before the tasks of a meta-batch run (``size`` tasks)."""

    def meta_update(self) -> dict[str, float]:
        """Apply one outer step. On a non-finite result the initialization is left unchanged.

        Returns:
            Statistics of the update (meta learning rate, gradient norm).

        Raises:
            IncompatibleAgentError: If the learner moves the initialization but the meta-batch gave
                it nothing to move it by (no task reached ``on_task_end`` or fired an inner step).
            NonFiniteError: If the gradient, the new initialization or the meta-optimizer's state is
                not finite (all are rolled back first).
        """
        grads = self.meta_gradient()
        if grads is None and self.updates_initialization:
            raise IncompatibleAgentError(
                f"{type(self).__name__}: the meta-batch produced no meta-gradient: no task reported its "
                "inner steps or its end to the hooks. The agent's learn() did not fire the hook events "
                "(an agent or library version whose training loop the hooks do not reach?); the "
                "initialization was left unchanged."
            )
        stats = self.apply_meta_gradient(grads) if grads is not None else self._idle_stats()
        self.meta_step += 1
        self.reset_accumulators()
        return stats

    def _idle_stats(self) -> dict[str, float]:
        return {"meta_lr": self.current_meta_lr(), "meta_grad_norm": 0.0}

    def apply_meta_gradient(self, grads: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One step of the meta-optimizer along ``grads``; rolled back if anything becomes non-finite.

        Args:
            grads: Descent direction per meta-learned parameter name (a subset is allowed).

        Raises:
            InvalidArgumentError: ``grads`` is ``None`` or names no meta-learned parameter.
            NonFiniteError: The gradient, the updated initialization or the meta-optimizer's state
                (e.g. Adam's ``exp_avg_sq`` after a 1e25 gradient) is not finite; the initialization
                and the optimizer state are restored before raising.
        """
        if self.meta_optimizer is None:
            raise InvalidArgumentError(f"{type(self).__name__} was not initialized; call initialize(agent).")
        if grads is None or not any(name in grads for name in self.init):
            got = None if grads is None else sorted(grads)[:5]
            raise InvalidArgumentError(
                f"{type(self).__name__}.apply_meta_gradient needs a gradient for the meta-learned "
                f"parameters {sorted(self.init)[:5]}, got {got}."
            )
        lr = self.current_meta_lr()
        grad_norm = check_finite(grads, f"{type(self).__name__} meta-gradient")
        names = list(self.init)
        backup = torch._foreach_mul([self.init[k].detach() for k in names], 1.0)
        optimizer_backup = copy.deepcopy(self.meta_optimizer.state_dict())
        for group in self.meta_optimizer.param_groups:
            group["lr"] = lr
        for name, value in self.init.items():
            value.grad = grads[name].to(value.dtype) if name in grads else None
        self.meta_optimizer.step()
        self.meta_optimizer.zero_grad(set_to_none=True)
        try:
            check_finite(self.init, f"{type(self).__name__} meta-update")
            check_finite(_optimizer_state(self.meta_optimizer), f"{type(self).__name__} meta-optimizer state")
        except NonFiniteError:
            with torch.no_grad():
                for name, value in zip(names, backup, strict=True):
                    self.init[name].copy_(value)
            self.meta_optimizer.load_state_dict(optimizer_backup)
            raise
        return {"meta_lr": lr, "meta_grad_norm": grad_norm}

    # ----- state for checkpoints ---------------------------------------------------------------
    def initialization(self) -> dict[str, torch.Tensor]:
        """Detached copy of the current initialization."""
        return {k: v.detach().clone() for k, v in self.init.items()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint must hold as tensors (initialization and meta-optimizer state)."""
        from baselines.checkpoint import optimizer_tensors

        tensors = {f"init.{k}": v.detach() for k, v in self.init.items()}
        tensors.update(optimizer_tensors(self.meta_optimizer))
        return tensors

    def state_json(self) -> dict[str, Any]:
        from baselines.checkpoint import optimizer_json

        return {
            "meta_step": self.meta_step,
            "total_meta_steps": self.total_meta_steps,
            "optimizer": optimizer_json(self.meta_optimizer),
        }

    def load_state(self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_tensors` and :meth:`state_json` saved (after :meth:`initialize`)."""
        from baselines.checkpoint import load_optimizer_state

        with torch.no_grad():
            for name, value in self.init.items():
                value.copy_(tensors[f"init.{name}"])
        load_optimizer_state(self.meta_optimizer, tensors, state["optimizer"])
        self.meta_step = int(state["meta_step"])
        self.total_meta_steps = int(state["total_meta_steps"])
        self.reset_accumulators()


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Every floating-point state tensor of ``optimizer`` (momentum buffers, Adam moments) by a name
    such as ``param3.exp_avg_sq``."""
    return {
        f"param{i}.{key}": value
        for i, state in enumerate(optimizer.state.values())
        for key, value in state.items()
        if torch.is_tensor(value) and value.is_floating_point()
    }


def _merged(mine: Any, theirs: Any) -> Any:
    """``mine + theirs`` for counts, tensors and (nested) dicts of them; ``None`` is empty."""
    if theirs is None:
        return mine
    if isinstance(theirs, dict):
        out = dict(mine or {})
        for key, value in theirs.items():
            out[key] = _merged(out.get(key), value)
        return out
    if mine is None:
        return theirs.clone() if torch.is_tensor(theirs) else theirs
    return mine + theirs
