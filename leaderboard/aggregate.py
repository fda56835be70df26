"""Board-side views of raw scores: performance profiles and summarised learning curves.

The statistics themselves (IQM and mean with bootstrap CIs, probability of improvement) live in
:mod:`metaenvs.aggregates`, the one implementation that ``metaenvs evaluate`` reports too; they are
re-exported here for the leaderboard's callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaenvs.aggregates import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    by_task,
    compute_aggregates,
    interval,
    probability_of_improvement,
    summarize,
)
from metaenvs.errors import InvalidArgumentError

MAX_CURVE_POINTS = 200

__all__ = [
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "by_task",
    "compute_aggregates",
    "curve_summary",
    "interval",
    "performance_profile",
    "probability_of_improvement",
    "summarize",
]


def performance_profile(
    scores: Mapping[str, Sequence[float]], thresholds: np.ndarray, higher_is_better: bool
) -> np.ndarray:
    """Run-score distribution: per threshold, the fraction of runs better than it, averaged over tasks."""
    out = np.zeros(len(thresholds))
    for values in scores.values():
        v = np.asarray(values, dtype=np.float64)[:, None]
        better = v > thresholds[None, :] if higher_is_better else v < thresholds[None, :]
        out += better.mean(axis=0)
    return out / max(len(scores), 1)


def curve_summary(curves: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and inter-quartile band of held-out learning curves, on one grid of at most 200 points.

    Runs that share their steps are averaged as they are; otherwise each run is interpolated onto an
    even grid from 0 to the longest run's last step.
    """
    if not curves:
        raise InvalidArgumentError("curve_summary needs at least one curve.")
    steps0 = [float(s) for s in curves[0]["steps"]]
    if all([float(s) for s in c["steps"]] == steps0 for c in curves) and steps0:
        grid = np.asarray(steps0)
        values = np.asarray([c["values"] for c in curves], dtype=np.float64)
    else:
        end = max(float(c["steps"][-1]) for c in curves if c["steps"])
        grid = np.linspace(0.0, end, MAX_CURVE_POINTS)
        values = np.asarray([_interp(grid, c) for c in curves])
    if grid.size > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, grid.size - 1, MAX_CURVE_POINTS).round().astype(int))
        grid, values = grid[keep], values[:, keep]
    q25, q75 = np.percentile(values, [25, 75], axis=0)
    return {
        "x_unit": str(curves[0]["x_unit"]),
        "y_name": str(curves[0]["y_name"]),
        "steps": grid.tolist(),
        "mean": values.mean(axis=0).tolist(),
        "q25": q25.tolist(),
        "q75": q75.tolist(),
        "n_runs": len(curves),
    }


def _interp(grid: np.ndarray, curve: Mapping[str, Any]) -> np.ndarray:
    steps = np.asarray(curve["steps"], dtype=np.float64)
    values = np.asarray(curve["values"], dtype=np.float64)
    if steps.size == 0:
        return np.full(grid.shape, np.nan)
    return np.interp(grid, steps, values)
