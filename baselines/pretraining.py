"""Multi-task pretraining: a shared body with one head per task (the "fine-tuning" baseline).

Each meta step moves the shared body along the average over the meta-batch of
each task's loss gradient at the current body (joint multi-task SGD on the body),
while every task trains its own head. Heads persist per task id, so on a finite
training split each task keeps improving its head across meta steps; a task seen
for the first time starts from the initial head. Heads trained in a meta-batch are kept
at its meta-update (so every task of a batch starts from the heads of the previous one,
whether tasks run one after another, batched or on Ray workers). The saved initialization is the
body only: fine-tuning on a held-out task starts from the pretrained body and a
fresh head (the agent's seeded initialization), as in Leap's "multi-headed
fine-tuning" baseline.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from agents.hooks import InnerStepContext, TaskEndContext, TaskStartContext
from agents.parameters import copy_into, snapshot
from baselines.base import MetaLearner
from metaenvs.errors import IncompatibleAgentError


def last_layer_names(model: nn.Module) -> list[str]:
    """Names of the parameters of the last module (in registration order) that owns parameters."""
    owner = None
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            owner = name
    return [
        f"{owner}.{n}" if owner else n
        for n, _ in model.get_submodule(owner or "").named_parameters(recurse=False)
    ]


class MultiTask(MetaLearner):
    """Multi-headed multi-task pretraining of a shared body.

    Args:
        head: Name prefixes of the per-task head parameters; default: the model's last layer.
        meta_lr: Learning rate of the body.
        meta_optimizer: Default ``"adam"``.
        max_heads: Most per-task heads kept (least recently used are dropped).
        **kwargs: See :class:`~baselines.base.MetaLearner`.
    """

    name: ClassVar[str] = "mtl"
    accumulators: ClassVar[tuple[str, ...]] = ("_sum", "_tasks", "_new_heads")

    def __init__(
        self,
        head: Sequence[str] | None = None,
        meta_lr: float = 1e-3,
        meta_optimizer: str = "adam",
        max_heads: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(meta_lr=meta_lr, meta_optimizer=meta_optimizer, **kwargs)
        self.head_prefixes = None if head is None else list(head)
        self.max_heads = int(max_heads)
        self.heads: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()

    def hyperparameters(self) -> dict[str, Any]:
        params = getattr(self, "user_params", self.param_prefixes)
        return {
            **super().hyperparameters(),
            "params": params,
            "head": self.head_prefixes,
            "max_heads": self.max_heads,
        }

    def initialize(self, agent: Any, total_meta_steps: int = 1) -> None:
        """The body is the selected parameters (``params``, as for every learner; all by default) less
        the head (``head``; default: the model's last layer).

        Raises:
            IncompatibleAgentError: If no body is left: the model has no parameters besides its head.
        """
        if not hasattr(self, "user_params"):  # the user's selection, kept however often this runs
            self.user_params = self.param_prefixes
        self.param_prefixes = self.user_params
        names = [n for n, _ in agent.model.named_parameters()]
        head = self.head_prefixes or last_layer_names(agent.model)
        self.head_names = [n for n in names if any(n == p or n.startswith(p + ".") for p in head)]
        body = [n for n in names if n not in self.head_names and self._selected(n)]
        if not body:
            raise IncompatibleAgentError(
                f"MultiTask pretrains a body shared by the tasks under per-task heads, but every parameter "
                f"of this model ({names[:4]}) is its head {head} or outside params={self.param_prefixes}; "
                "a model with no body (a single point, as on Synthetic/RotatedHimmelblau) cannot be "
                "pretrained this way: use reptile, leap, fomaml or cts."
            )
        self.param_prefixes = body
        super().initialize(agent, total_meta_steps)
        self.head_init = snapshot(agent.model, self.head_names)
        self.heads.clear()

    def reset_accumulators(self) -> None:
        self._sum: dict[str, torch.Tensor] = {}
        self._tasks = 0
        self._new_heads: dict[str, dict[str, torch.Tensor]] = {}

    def on_task_start(self, ctx: TaskStartContext) -> None:
        super().on_task_start(ctx)
        copy_into(ctx.model, self.heads.get(ctx.task.id, self.head_init))

    def on_inner_step(self, ctx: InnerStepContext) -> None:
        if ctx.step != 0:
            return
        for k in self.init:
            g = ctx.grads.get(k)
            if g is not None:
                self._sum[k] = self._sum[k] + g if k in self._sum else g.detach().clone()
        self._tasks += 1

    def on_task_end(self, ctx: TaskEndContext) -> None:
        self._new_heads[ctx.task.id] = {k: ctx.params[k].detach().clone() for k in self.head_names}

    def merge(self, contribution: Mapping[str, Any]) -> None:
        heads = contribution.get("_new_heads", {})
        super().merge({k: v for k, v in contribution.items() if k != "_new_heads"})
        self._new_heads.update(heads)  # a task seen twice in a meta-batch keeps its later head

    def meta_update(self) -> dict[str, float]:
        """Update the body, and keep every task's trained head for the next time it is drawn."""
        for task_id, head in self._new_heads.items():
            self.heads[task_id] = head
            self.heads.move_to_end(task_id)
        while len(self.heads) > self.max_heads:
            self.heads.popitem(last=False)
        return super().meta_update()

    def meta_gradient(self) -> dict[str, torch.Tensor] | None:
        if self._tasks == 0:
            return None
        return {k: v / self._tasks for k, v in self._sum.items()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = super().state_tensors()
        for i, head in enumerate(self.heads.values()):
            tensors.update({f"head.{i}.{k}": v for k, v in head.items()})
        return tensors

    def state_json(self) -> dict[str, Any]:
        return {**super().state_json(), "head_tasks": list(self.heads)}

    def load_state(self, tensors: Any, state: Any) -> None:
        super().load_state(tensors, state)
        self.heads.clear()
        for i, task_id in enumerate(state.get("head_tasks", [])):
            self.heads[task_id] = {k: tensors[f"head.{i}.{k}"].clone() for k in self.head_names}
