"""Losses, task metrics, learning-curve metrics and aggregates, by name.

Losses and metrics are pure torch functions of ``(prediction, target)`` so they can
be used inside functional and differentiated inner loops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from metaenvs.errors import InvalidArgumentError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements."""
    return F.mse_loss(pred, target.reshape(pred.shape))


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of integer class targets."""
    return F.cross_entropy(logits, target.long())


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of correct arg-max predictions."""
    return (logits.argmax(dim=-1) == target.long()).to(logits.dtype).mean()


def error(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Classification error, ``1 - accuracy`` (what Leap's figures report)."""
    return 1.0 - accuracy(logits, target)


def nrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised RMSE: ``sqrt(mean((pred - y)^2))`` of targets standardised by the distribution.

    Families with this metric z-score their targets with one scaler (mean and std)
    shared by all tasks, so the RMSE is in units of the targets' standard deviation:
    the definition used by A-MAML's code. Each family documents its scaler.
    """
    return torch.sqrt(F.mse_loss(pred, target.reshape(pred.shape)))


def himmelblau(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of the shifted, rotated Himmelblau loss; see :mod:`metaenvs.synthetic.himmelblau`.

    ``target`` holds the task's parameters (``PARAM_FIELDS`` of that module) per row.
    """
    from metaenvs.synthetic.himmelblau import rotated_himmelblau

    return rotated_himmelblau(points, target).mean()


LOSSES: dict[str, LossFn] = {"mse": mse, "cross_entropy": cross_entropy, "himmelblau": himmelblau}
METRICS: dict[str, tuple[LossFn, bool]] = {
    # name: (function, higher_is_better)
    "mse": (mse, False),
    "loss": (mse, False),
    "accuracy": (accuracy, True),
    "error": (error, False),
    "nrmse": (nrmse, False),
    "himmelblau": (himmelblau, False),
    "cross_entropy": (cross_entropy, False),
}
INF = math.inf
SCORE_RANGES: dict[str, tuple[float, float]] = {
    # name: (lowest valid value, highest valid value), both inclusive; a score outside is impossible
    "mse": (0.0, INF),
    "loss": (0.0, INF),
    "accuracy": (0.0, 1.0),
    "error": (0.0, 1.0),
    "nrmse": (0.0, INF),
    "himmelblau": (0.0, INF),
    "cross_entropy": (0.0, INF),
    "success_rate": (0.0, 1.0),
    "return": (-INF, INF),  # RL: episode returns are unbounded in general
    "return_std": (0.0, INF),
    "episodes": (1.0, INF),  # how many episodes a score averages (scores of training episodes)
    "human_normalized": (-INF, INF),
    "train_loss": (0.0, INF),  # learning-curve values (``LearningCurve.y_name``)
    "episode_return": (-INF, INF),
}
"""The valid range of every score, metric and learning-curve value by name (the leaderboard refuses
values outside it)."""


def get_loss(name: str) -> LossFn:
    """The loss function registered as ``name``."""
    if name not in LOSSES:
        raise InvalidArgumentError(f"Unknown loss {name!r}; known losses: {', '.join(LOSSES)}.")
    return LOSSES[name]


def get_metric(name: str) -> tuple[LossFn, bool]:
    """``(function, higher_is_better)`` of the metric registered as ``name``."""
    if name not in METRICS:
        raise InvalidArgumentError(f"Unknown metric {name!r}; known metrics: {', '.join(METRICS)}.")
    return METRICS[name]


def score_range(name: str) -> tuple[float, float]:
    """``(low, high)``: the inclusive range of valid values of the score named ``name``.

    Raises:
        InvalidArgumentError: If the suite declares no range for ``name``.
    """
    if name not in SCORE_RANGES:
        raise InvalidArgumentError(
            f"No valid range is declared for score {name!r}; known scores: {', '.join(SCORE_RANGES)}."
        )
    return SCORE_RANGES[name]


# ----- learning curves -------------------------------------------------------------
def curve_auc(values: Sequence[float]) -> float:
    """Trapezoidal area under a per-step curve divided by the number of points, as in Leap's code.

    ``compute_auc`` in amzn/metalearn-leap (``src/omniglot/utils.py``) sums the
    ``n - 1`` unit trapezoids of ``n`` recorded values and divides by ``n``; this is
    that quantity.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.size == 0:
        raise InvalidArgumentError("Cannot take the AUC of an empty learning curve.")
    return float(np.trapezoid(y) / y.size)


def curve_auc_xy(x: Sequence[float], y: Sequence[float]) -> float:
    """Trapezoidal AUC of ``y`` against ``x`` divided by the span of ``x`` (irregular steps)."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if ya.size == 0:
        raise InvalidArgumentError("Cannot take the AUC of an empty learning curve.")
    if ya.size == 1 or xa[-1] == xa[0]:
        return float(ya.mean())
    return float(np.trapezoid(ya, xa) / (xa[-1] - xa[0]))


# ----- aggregates ------------------------------------------------------------------
def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval.

    Returns:
        ``(mean, half_width)``; the half-width is ``nan`` for a single value.
    """
    from scipy import stats

    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        raise InvalidArgumentError("Cannot aggregate an empty list of scores.")
    if not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"Scores must be finite to aggregate, got {a[~np.isfinite(a)][:3]}.")
    if a.size == 1:
        return float(a[0]), math.nan
    sem = a.std(ddof=1) / math.sqrt(a.size)
    return float(a.mean()), float(sem * stats.t.ppf(0.5 + confidence / 2, a.size - 1))
