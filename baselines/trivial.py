"""Trivial and classical baselines: predictors that meta-learn nothing and train nothing per task.

A meta-learned initialization is worth citing only if it beats what needs no learning at all. Each
baseline here is fitted once on the meta-train tasks' data (exactly the tasks, and the ratings of each
task, that a meta-learner sees: their training and query sets) and then predicts a held-out task's
query set from its training set in closed form. They follow the agent contract of
:func:`metaenvs.evaluation.evaluate` (``reset``, ``learn``, ``evaluate``, ``hyperparameters``), so they
are evaluated under a distribution's protocol by the same code as any initialization: the same tasks,
seeds, metric and statistic. The board ranks them in the same table, as ``baseline: NAME``.

Their ``learn`` takes no optimizer step; its curve is the training-set loss, constant over the
protocol's budget (so the records have the shape of every other entry's and the AUC is that loss).

Ratings (the family's one-hot item inputs, z-scored targets):

- ``global_mean``: the mean rating of the meta-train tasks;
- ``item_mean``: each item's mean rating over the meta-train tasks (the global mean for an item no
  meta-train task rated);
- ``user_mean``: the mean of the user's own training ratings;
- ``item_mean_user_offset``: the item's mean plus the user's mean offset from the item means on their
  training ratings.

Regression: ``support_mean`` (the mean of the task's training targets) and ``mean_function`` (the
meta-train mean function: the average target of the ``neighbours`` nearest meta-train points).
Classification: ``nearest_centroid`` (the training class nearest in input space; logits are minus the
squared distances). A model trained from scratch is the ``scratch`` meta-learner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from agents.curves import LearningCurve
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.metrics import get_loss, get_metric
from metaenvs.seeding import derive_seed

FIT_TASKS = 2000
"""Meta-train tasks a baseline is fitted on where the train split is infinite (drawn with a fixed seed)."""


class TrivialBaseline(ABC):
    """Base class: fit on the meta-train tasks (:meth:`fit`), predict a task from its training set.

    Args:
        dist: The task distribution (supervised); ``None`` for a baseline given its meta-train data by
            hand (:meth:`fit`).
    """

    name: ClassVar[str]
    family: ClassVar[str]  # "ratings", "regression" or "classification"
    fit_tasks: ClassVar[int] = FIT_TASKS
    step_unit = "inner_steps"

    def __init__(self, dist: Any = None) -> None:
        if dist is not None and not self.applies_to(dist):
            raise IncompatibleAgentError(
                f"Baseline {self.name!r} is for {self.family} distributions; {dist.id} is not one. "
                f"Baselines for it: {', '.join(baselines_for(dist)) or 'none'}."
            )
        self.dist = dist
        self._fitted = False
        self._memo: dict[str, dict[str, float]] = {}

    @classmethod
    def for_distribution(cls, dist: Any, seed: int = 0) -> TrivialBaseline:
        """The baseline for ``dist`` (``seed`` is accepted for the agent contract; nothing is random)."""
        return cls(dist)

    @classmethod
    def applies_to(cls, dist: Any) -> bool:
        """Whether the baseline is defined for ``dist``."""
        return family_of(dist) == cls.family

    def hyperparameters(self) -> dict[str, Any]:
        """What an entry records as its agent: the baseline's name and settings."""
        return {"type": "baseline", "name": self.name, **self.settings()}

    def settings(self) -> dict[str, Any]:
        """The baseline's own settings (recorded; none by default)."""
        return {}

    # ----- the agent contract ---------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Nothing to reset: the baseline has no parameters."""
        return None

    def set_parameters(self, tensors: Any) -> None:
        raise InvalidArgumentError(
            f"Baseline {self.name!r} has no parameters; evaluate it without an initialization."
        )

    def learn(self, task: Any, steps: int, hooks: Any = (), seed: int = 0) -> LearningCurve:
        """No optimizer step: the curve is the training-set loss of the prediction, ``steps + 1`` times."""
        loss = self._scores(task)["train_loss"]
        return LearningCurve(
            task.id, "inner_step", "train_loss", list(range(steps + 1)), [loss] * (steps + 1)
        )

    def evaluate(self, task: Any, seed: int = 0, curve: Any = None) -> dict[str, float]:
        """``{"loss": ..., metric: ...}`` of the prediction on the task's query set."""
        scores = self._scores(task)
        return {k: v for k, v in scores.items() if k != "train_loss"}

    def _scores(self, task: Any) -> dict[str, float]:
        """A task's scores, computed once (a baseline is deterministic: every seed gives the same)."""
        if task.id not in self._memo:
            data = task.load()
            loss, (metric_fn, _) = get_loss(data.loss), get_metric(data.metric)
            pred = self.predict(data, data.x_test)
            self._memo[task.id] = {
                "train_loss": float(loss(self.predict(data, data.x_train), data.y_train)),
                "loss": float(loss(pred, data.y_test)),
                data.metric: float(metric_fn(pred, data.y_test)),
            }
        return self._memo[task.id]

    # ----- the baseline ---------------------------------------------------------------
    def predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        """Predictions for inputs ``x`` of a task whose training set is ``data.x_train, data.y_train``."""
        if not self._fitted and type(self)._fit is not TrivialBaseline._fit:
            if self.dist is None:
                raise InvalidArgumentError(f"Baseline {self.name!r} has no distribution: fit() it first.")
            self.fit(meta_train_data(self.dist, self.fit_tasks))
        return self._predict(data, x)

    def fit(self, pooled: list[Any]) -> TrivialBaseline:
        """Fit on meta-train tasks' data (a list of ``SupervisedData``; by default, on first use, the
        distribution's meta-train tasks: :func:`meta_train_data`)."""
        self._fit(pooled)
        self._fitted = True
        self._memo.clear()
        return self

    def _fit(self, pooled: list[Any]) -> None:
        """What the baseline learns from the meta-train tasks (nothing by default)."""
        return None

    @abstractmethod
    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        """The baseline's prediction for inputs ``x`` of a task (``data``: its training set)."""


def family_of(dist: Any) -> str | None:
    """``"ratings"``, ``"regression"``, ``"classification"`` or ``None`` (RL, or an unknown loss)."""
    from metaenvs.ratings import RatingsDistribution

    if getattr(dist, "kind", None) != "supervised":
        return None
    if isinstance(dist, RatingsDistribution):
        return "ratings"
    loss = dist.tasks(dist.protocol.split)[0].load().loss
    return {"mse": "regression", "cross_entropy": "classification"}.get(loss)


def meta_train_data(dist: Any, tasks: int = FIT_TASKS) -> list[Any]:
    """The data of the meta-train tasks: all of a finite train split, else ``tasks`` draws (seeded)."""
    if dist.splits.get("train") is None:
        rng = np.random.default_rng(derive_seed(dist.seed, "baseline-fit"))
        tasks = dist.sample(rng, "train", tasks)
    else:
        tasks = dist.tasks("train")
    return [t.load() for t in tasks]


def _seen(pooled: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every ``(x, y)`` part of the meta-train tasks a meta-learner sees: training and query sets."""
    return [part for d in pooled for part in ((d.x_train, d.y_train), d.query())]


def _targets(pooled: list[Any]) -> torch.Tensor:
    return torch.cat([y for _, y in _seen(pooled)])


class GlobalMean(TrivialBaseline):
    name, family = "global_mean", "ratings"

    def _fit(self, pooled: list[Any]) -> None:
        self.mean = _targets(pooled).mean(0)

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        return self.mean.expand(len(x), -1).clone()


class ItemMean(TrivialBaseline):
    name, family = "item_mean", "ratings"

    def _fit(self, pooled: list[Any]) -> None:
        width = pooled[0].x_train.shape[1]
        sums, counts = torch.zeros(width, dtype=torch.float64), torch.zeros(width, dtype=torch.float64)
        for x, y in _seen(pooled):
            item = x.argmax(1)
            sums.index_add_(0, item, y[:, 0].double())
            counts.index_add_(0, item, torch.ones(len(item), dtype=torch.float64))
        overall = sums.sum() / counts.sum()
        self.item_means = torch.where(counts > 0, sums / counts.clamp(min=1), overall).float()

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        return self.item_means[x.argmax(1)][:, None]


class UserMean(TrivialBaseline):
    name, family = "user_mean", "ratings"

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        return data.y_train.mean(0).expand(len(x), -1).clone()


class ItemMeanUserOffset(ItemMean):
    name = "item_mean_user_offset"

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        offset = (data.y_train[:, 0] - self.item_means[data.x_train.argmax(1)]).mean()
        return (self.item_means[x.argmax(1)] + offset)[:, None]


class SupportMean(TrivialBaseline):
    name, family = "support_mean", "regression"

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        return data.y_train.mean(0).expand(len(x), -1).clone()


class MeanFunction(TrivialBaseline):
    """The meta-train mean function, estimated by the average target of the nearest pooled points."""

    name, family = "mean_function", "regression"
    neighbours = 32
    fit_tasks = 500

    def settings(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "fit_tasks": self.fit_tasks}

    def _fit(self, pooled: list[Any]) -> None:
        self.x = torch.cat([x for x, _ in _seen(pooled)]).flatten(1).double()
        self.y = _targets(pooled).double()

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        nearest = torch.cdist(x.flatten(1).double(), self.x).topk(self.neighbours, largest=False).indices
        return self.y[nearest].mean(1).to(data.y_train.dtype)


class NearestCentroid(TrivialBaseline):
    name, family = "nearest_centroid", "classification"

    def _predict(self, data: Any, x: torch.Tensor) -> torch.Tensor:
        support, labels = data.x_train.flatten(1), data.y_train
        classes = data.n_outputs
        sums = torch.zeros(classes, support.shape[1], dtype=support.dtype).index_add_(0, labels, support)
        counts = torch.bincount(labels, minlength=classes).clamp(min=1).to(support.dtype)
        return -(torch.cdist(x.flatten(1), sums / counts[:, None]) ** 2)


BASELINES: dict[str, type[TrivialBaseline]] = {
    cls.name: cls
    for cls in (
        GlobalMean,
        ItemMean,
        UserMean,
        ItemMeanUserOffset,
        SupportMean,
        MeanFunction,
        NearestCentroid,
    )
}
"""Every trivial baseline by name (``metaenvs baseline NAME``)."""


def baselines_for(dist: Any) -> list[str]:
    """The names of the baselines defined for ``dist``."""
    family = family_of(dist)
    return [name for name, cls in BASELINES.items() if cls.family == family]


def make_baseline(name: str, dist: Any) -> TrivialBaseline:
    """The baseline registered as ``name``, for ``dist``.

    Raises:
        InvalidArgumentError: For an unknown name (the known ones are listed).
        IncompatibleAgentError: For a baseline not defined for ``dist`` (those that are are named).
    """
    if name not in BASELINES:
        raise InvalidArgumentError(f"Unknown baseline {name!r}; available: {', '.join(BASELINES)}.")
    return BASELINES[name](dist)
