"""MAML (Finn et al. 2017) by backpropagation through the inner loop, and its exact discrete adjoint.

Both run the agent's functional inner loop (``torch.func.functional_call`` over an
explicit parameter dict) instead of its hooked ``learn``; the driver calls
:meth:`SecondOrderLearner.learn_task` for them. Every parameter is adapted in the
inner loop; the meta-gradient is taken w.r.t. the meta-learned subset of the
initialization.

* :class:`MAML` builds the graph of all K steps (memory O(K * graph)); with
  ``first_order=True`` it is FOMAML. Inner optimizers: plain SGD, SGD with
  momentum and Adam, each written as a differentiable update.
* :class:`ExactAdjoint` gives MAML's exact meta-gradient for plain gradient descent
  without any graph: it reverses the K updates with Hessian-vector products,
  ``lambda_k = (I - alpha H(theta_k)) lambda_{k+1}`` from
  ``lambda_K = grad L_query(theta_K)``. ``checkpoint=False`` stores all K states
  (O(K d) memory); ``checkpoint=True`` keeps every ceil(sqrt(K))-th state and
  recomputes each segment on the way back (O(sqrt(K) d) memory, one extra forward pass).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from agents.curves import LearningCurve
from agents.parameters import finite_loss, safe_sqrt
from baselines.base import MetaLearner
from baselines.functional import (
    Params,
    full_params,
    gradient_descent,
    hvp,
    loss_on,
    query_loss,
    train_batches,
)
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.validation import available_memory, non_negative_float, one_of

FIRST_ORDER_ALTERNATIVES = "leap, reptile, fomaml, fomamlpp, cts"
INNER_OPTIMIZERS = ("sgd", "momentum", "adam")


class SecondOrderLearner(MetaLearner, ABC):
    """Base of meta-learners that run the agent's functional inner loop themselves."""

    functional: ClassVar[bool] = True
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_tasks")
    required_capabilities: tuple[str, ...] = ("differentiable",)
    inner_optimizers: ClassVar[tuple[str, ...]] = ("sgd",)
    """The inner optimizers the algorithm's meta-gradient is defined for (the adjoint, iMAML and A-MAML
    assume plain gradient descent; MAML differentiates through any of them)."""

    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        """Refuse an agent whose inner optimizer this algorithm cannot differentiate through, instead
        of meta-training through another inner loop than the one the agent (and its protocol) runs."""
        used = getattr(agent, "optimizer_name", "sgd")
        if used not in self.inner_optimizers:
            raise IncompatibleAgentError(
                f"{type(self).__name__} is defined for inner {'/'.join(self.inner_optimizers)} steps, but "
                f"the agent trains with {used!r} (its protocol's recipe); its meta-gradient would be that of "
                "another inner loop than the one evaluated. Use maml, which differentiates through "
                "sgd, momentum and adam, or a first-order learner (fomaml, reptile, leap)."
            )
        super().initialize(agent, total_meta_steps)

    def alternatives_hint(self) -> str:
        return f"Use a first-order meta-learner instead: {FIRST_ORDER_ALTERNATIVES}."

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0

    def add_task_gradient(self, grads: Params) -> None:
        for k in self.init:
            g = grads[k].detach()
            self._sum[k] = self._sum[k] + g if k in self._sum else g.clone()
        self._tasks += 1

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        return None if self._tasks == 0 else {k: v / self._tasks for k, v in self._sum.items()}

    graph_factor: ClassVar[int] = 1
    """Copies of the parameters kept per stored state (MAML's autograd graph keeps several)."""

    def stored_states(self, agent: Any, steps: int) -> int:
        """How many parameter-sized states one task's meta-gradient keeps in memory at ``steps``."""
        return steps + 1

    def check_memory(self, agent: Any, steps: int, tasks_at_once: int = 1) -> None:
        """Refuse, before anything runs, a budget whose stored states would not fit in memory.

        Raises:
            InvalidArgumentError: Naming the estimate, the memory available and what to change.
        """
        n_params = sum(p.numel() for p in agent.model.parameters())
        element = next(agent.model.parameters()).element_size()
        need = self.stored_states(agent, steps) * self.graph_factor * n_params * element * tasks_at_once
        have = available_memory()
        if have is not None and need > 0.5 * have:
            raise InvalidArgumentError(
                f"{type(self).__name__} with {steps} inner steps would keep about {need / 2**30:.1f} GiB of "
                f"states ({self.stored_states(agent, steps)} x {n_params} parameters x {tasks_at_once} "
                f"task(s)), more than half the {have / 2**30:.1f} GiB available. Lower --inner-steps, or use "
                "an algorithm whose memory does not grow with the steps (adjoint with checkpoint=True, "
                "imaml, or a first-order one: fomaml, reptile, leap)."
            )

    def start_params(self, agent: Any) -> Params:
        """Full parameter dict at the initialization (meta-learned part from :attr:`init`)."""
        return {k: v.detach().clone() for k, v in full_params(agent, self.init).items()}

    @abstractmethod
    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        """Run the task's inner loop, accumulate its meta-gradient, and return its curve."""

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """:meth:`learn_task` for every task of a meta-batch, in order (vectorised where overridden)."""
        return [self.learn_task(agent, t, steps, s) for t, s in zip(tasks, seeds, strict=True)]


def _functional_step(
    name: str, params: Params, grads: list[torch.Tensor], state: dict, lr: float, step: int, momentum: float
) -> Params:
    """One differentiable optimizer update (SGD, SGD with momentum, or Adam with PyTorch's defaults)."""
    out = {}
    for (k, p), g in zip(params.items(), grads, strict=True):
        if name == "sgd":
            out[k] = p - lr * g
        elif name == "momentum":
            state[k] = g if k not in state else momentum * state[k] + g
            out[k] = p - lr * state[k]
        else:
            m, v = state.get(k, (torch.zeros_like(p), torch.zeros_like(p)))
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            state[k] = (m, v)
            m_hat, v_hat = m / (1 - 0.9 ** (step + 1)), v / (1 - 0.999 ** (step + 1))
            out[k] = p - lr * m_hat / (safe_sqrt(v_hat) + 1e-8)
    return out


class MAML(SecondOrderLearner):
    """MAML with the graph of the inner loop.

    Args:
        first_order: Drop second-order terms (FOMAML).
        inner_optimizer: ``None`` (default): the agent's own optimizer, the one its protocol names;
            ``"sgd"``, ``"momentum"`` or ``"adam"`` must be the agent's (else refused).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "maml"
    graph_factor: ClassVar[int] = 4
    inner_optimizers: ClassVar[tuple[str, ...]] = INNER_OPTIMIZERS

    def __init__(
        self,
        first_order: bool = False,
        inner_optimizer: str | None = None,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.first_order = bool(first_order)
        self.inner_optimizer = (
            None if inner_optimizer is None else one_of("inner_optimizer", inner_optimizer, INNER_OPTIMIZERS)
        )

    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        used = getattr(agent, "optimizer_name", "sgd")
        if self.inner_optimizer is not None and self.inner_optimizer != used:
            raise IncompatibleAgentError(
                f"MAML(inner_optimizer={self.inner_optimizer!r}) would meta-train through another inner loop "
                f"than the agent's {used!r} (its protocol's recipe); leave inner_optimizer unset to "
                "differentiate through the agent's own optimizer."
            )
        super().initialize(agent, total_meta_steps)

    def inner_optimizer_of(self, agent: Any) -> str:
        """The optimizer MAML differentiates through: the agent's own."""
        return getattr(agent, "optimizer_name", "sgd")

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "first_order": self.first_order,
            "inner_optimizer": self.inner_optimizer,
        }

    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        start = {k: v.requires_grad_(True) for k, v in self.start_params(agent).items()}
        params, state = dict(start), {}
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        for step, (x, y) in enumerate(train_batches(agent, task, steps, seed)):
            loss = loss_on(agent, task, x, y)(params)
            curve.append(step, finite_loss(loss, task, step))
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=not self.first_order)
            params = _functional_step(
                self.inner_optimizer_of(agent), params, list(grads), state, agent.lr, step, agent.momentum
            )
            if self.first_order:
                params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
                state = {k: _detach(v) for k, v in state.items()}
        data = agent.data(task)
        with torch.no_grad():
            curve.append(
                steps, finite_loss(loss_on(agent, task, data.x_train, data.y_train)(params), task, steps)
            )
        outer = query_loss(agent, task)(params)
        wrt = params if self.first_order else start
        names = list(self.init)
        grads = torch.autograd.grad(outer, [wrt[k] for k in names])
        self.add_task_gradient(dict(zip(names, grads, strict=True)))
        return curve

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """Every task's meta-gradient at once (``vmap``; see :mod:`baselines.batched`)."""
        from baselines.batched import maml_task_fn, run_vmapped

        loss = agent.data(tasks[0]).loss
        return run_vmapped(self, agent, tasks, steps, seeds, maml_task_fn(self, agent, loss, steps))


def _detach(value: Any) -> Any:
    return tuple(v.detach() for v in value) if isinstance(value, tuple) else value.detach()


class ExactAdjoint(SecondOrderLearner):
    """MAML's exact meta-gradient for plain gradient descent, by the reversed discrete adjoint.

    Args:
        checkpoint: Keep only every ceil(sqrt(K))-th state and recompute segments (O(sqrt K) memory).
        meta_lr: Meta learning rate.
        meta_optimizer: Default ``"adam"``.
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "adjoint"

    def __init__(
        self, checkpoint: bool = False, meta_lr: float = 1e-3, meta_optimizer: str = "adam", **kwargs: Any
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.checkpoint = bool(checkpoint)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "checkpoint": self.checkpoint}

    def stored_states(self, agent: Any, steps: int) -> int:
        return 2 * math.ceil(math.sqrt(steps)) + 1 if self.checkpoint else steps + 1

    def learn_task(self, agent: Any, task: Any, steps: int, seed: int) -> LearningCurve:
        lr = non_negative_float("lr", agent.lr)
        batches = train_batches(agent, task, steps, seed)
        stride = math.ceil(math.sqrt(steps)) if self.checkpoint else 1
        start = self.start_params(agent)
        final, curve, states = self._forward(agent, task, start, batches, lr, stride, seed)
        lam = torch.func.grad(query_loss(agent, task))(final)
        for k in reversed(range(steps)):
            theta_k = self._state(agent, task, states, batches, lr, stride, k)
            h_lam = hvp(loss_on(agent, task, *batches[k]), theta_k, lam)
            names = list(lam)
            lam = dict(
                zip(
                    names,
                    torch._foreach_add([lam[n] for n in names], [h_lam[n] for n in names], alpha=-lr),
                    strict=True,
                )
            )
        self.add_task_gradient(lam)
        return curve

    def learn_batch(self, agent: Any, tasks: Sequence[Any], steps: int, seeds: Sequence[int]) -> list:
        """Every task's meta-gradient at once (``vmap``, all states kept; see :mod:`baselines.batched`)."""
        from baselines.batched import adjoint_task_fn, run_vmapped

        non_negative_float("lr", agent.lr)
        loss = agent.data(tasks[0]).loss
        return run_vmapped(self, agent, tasks, steps, seeds, adjoint_task_fn(self, agent, loss, steps))

    def _forward(
        self, agent: Any, task: Any, start: Params, batches: list, lr: float, stride: int, seed: int
    ) -> tuple[Params, LearningCurve, dict[int, Params]]:
        final, curve, kept = gradient_descent(agent, task, start, len(batches), lr, seed, keep_every=stride)
        self._segment: tuple[int, list[Params]] | None = None
        return {k: v.detach() for k, v in final.items()}, curve, kept

    def _state(
        self, agent: Any, task: Any, kept: dict[int, Params], batches: list, lr: float, stride: int, k: int
    ) -> Params:
        """theta_k: stored, or recomputed from the last checkpoint (one segment cached at a time)."""
        if k in kept and stride == 1:
            return kept[k]
        base = (k // stride) * stride
        if self._segment is None or self._segment[0] != base:
            states, params = [], kept[base]
            for j in range(base, min(base + stride, len(batches))):
                states.append(params)
                g = torch.func.grad(loss_on(agent, task, *batches[j]))(params)
                params = {n: params[n] - lr * g[n] for n in params}
            self._segment = (base, states)
        return self._segment[1][k - base]
