"""Learning curves: what an agent records while it learns one task."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metaenvs.errors import InvalidArgumentError
from metaenvs.metrics import curve_auc, curve_auc_xy


@dataclass
class LearningCurve:
    """Values recorded against steps while learning one task.

    Attributes:
        task_id: The task the curve belongs to.
        x_unit: ``"inner_step"`` (supervised) or ``"timestep"`` (RL).
        y_name: ``"train_loss"`` or ``"episode_return"``.
        steps: x values.
        values: y values.
        losses: Loss of every optimizer step (RL agents; supervised curves are losses already).
        successes: 1.0 or 0.0 per recorded episode, where the env reports success (Meta-World):
            aligned with ``steps`` / ``values``; empty otherwise.
    """

    task_id: str
    x_unit: str
    y_name: str
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)

    def append(self, step: float, value: float) -> None:
        self.steps.append(step)
        self.values.append(float(value))

    def auc(self) -> float:
        """Normalised area under the curve (per-step trapezoid / number of steps, as in Leap)."""
        if self.x_unit == "inner_step":
            return curve_auc(self.values)
        return curve_auc_xy(self.steps, self.values)

    def final(self) -> float:
        """Last value of the curve."""
        return self.values[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "x_unit": self.x_unit,
            "y_name": self.y_name,
            "steps": list(self.steps),
            "values": list(self.values),
            "losses": list(self.losses),
            **({"successes": list(self.successes)} if self.successes else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearningCurve:
        return cls(
            **{k: data[k] for k in ("task_id", "x_unit", "y_name", "steps", "values")},
            losses=list(data.get("losses", [])),
            successes=list(data.get("successes", [])),
        )


def curves_from_rows(tasks: Sequence[Any], rows: Any) -> list[LearningCurve]:
    """One training-loss curve per task from ``rows[task][inner step]`` (a batched inner loop's losses)."""
    curves = []
    for task, row in zip(tasks, rows, strict=True):
        curve = LearningCurve(task.id, "inner_step", "train_loss")
        for step, value in enumerate(row):
            curve.append(step, value)
        curves.append(curve)
    return curves


def training_score(curve: LearningCurve | None, task_id: str, episodes: int, n_envs: int) -> dict[str, float]:
    """Mean and std of the last ``episodes`` training episodes of one run (Machado et al. 2018, sec. 5).

    Args:
        curve: What the run's ``learn`` returned: the score belongs to that run, never to hidden state.
        task_id: The task being scored (the curve must be of it).
        episodes: How many of the last finished episodes to average.
        n_envs: Envs of the run (for the error message).

    Raises:
        InvalidArgumentError: If no curve, another task's curve, or no finished episode is given.
    """
    if curve is None or curve.task_id != task_id:
        raise InvalidArgumentError(
            "eval_mode='training' scores the training episodes of one run: pass the curve that "
            f"learn() returned for task {task_id!r}, as evaluate(task, seed, curve=curve)"
            + ("" if curve is None else f" (the curve given is of task {curve.task_id!r})")
            + "."
        )
    returns = [v for v in curve.values if math.isfinite(v)][-episodes:]
    if not returns:
        raise InvalidArgumentError(
            f"No episode of task {task_id!r} finished within the {curve.steps[-1]} timesteps of the last "
            f"learn() ({n_envs} envs); raise the budget so that episodes end and can be scored."
        )
    return {
        "return": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "episodes": float(len(returns)),
    }
