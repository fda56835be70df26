"""Aggregates recomputed from raw scores: IQM and mean with stratified-bootstrap CIs, probability of
improvement, performance profiles and summarised learning curves.

Everything here is a function of the raw per-task x per-seed scores and of an explicit, fixed
bootstrap seed, so the same entry gives bitwise the same aggregates on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaenvs.aggregates import STATISTICS, score_rows
from metaenvs.errors import InvalidArgumentError

BOOTSTRAP_SEED = 20210825
"""Seed of the bootstrap generator (fixed: aggregates are reproducible bitwise)."""
BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95
MAX_CURVE_POINTS = 200
BLOCK = 250


def by_task(records: Sequence[Mapping[str, Any]], key: str = "final") -> dict[str, list[float]]:
    """``task_id -> [score of each seed]`` (seeds in ascending order) from result records."""
    rows: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        rows.setdefault(str(record["task_id"]), []).append((int(record["seed"]), float(record[key])))
    return {task: [score for _, score in sorted(pairs)] for task, pairs in sorted(rows.items())}


def interval(
    scores: Mapping[str, Sequence[float]], statistic: str, resample_tasks: bool = False
) -> dict[str, float]:
    """Point estimate and bootstrap CI of ``statistic`` (``"iqm"`` or ``"mean"``).

    The estimate is :func:`metaenvs.aggregates.iqm` / ``mean`` of all runs. The CI is the percentile
    interval of the statistic over :data:`BOOTSTRAP_REPS` replicates drawn from
    ``default_rng(BOOTSTRAP_SEED)``, each resampling every task's runs with replacement (the
    stratified bootstrap of Agarwal et al. 2021) and, with ``resample_tasks``, first the tasks
    themselves (two-level; for held-out tasks that are a sample of the distribution). It is the
    resampling of :func:`metaenvs.aggregates.stratified_bootstrap_ci`, vectorised over replicates
    (that one draws replicate by replicate and takes ~4 s for 100 tasks).
    """
    if statistic not in STATISTICS:
        raise InvalidArgumentError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}.")
    rows = score_rows({task: scores[task] for task in sorted(scores)})
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = _two_level(rows, rng) if resample_tasks else _stratified(rows, rng)
    replicates = np.concatenate(
        [_statistic(resampled[i : i + BLOCK], statistic) for i in range(0, BOOTSTRAP_REPS, BLOCK)]
    )
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    estimate = STATISTICS[statistic](np.concatenate(rows))
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def _stratified(rows: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``(reps, runs)``: every task's runs resampled within the task, task by task."""
    return np.concatenate(
        [row[rng.integers(0, row.size, size=(BOOTSTRAP_REPS, row.size))] for row in rows], axis=1
    )


def _two_level(rows: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``(reps, runs)``: tasks drawn with replacement, then runs within each drawn task."""
    sizes = {row.size for row in rows}
    if len(sizes) != 1:
        raise InvalidArgumentError(
            f"Tasks have different numbers of runs {sorted(sizes)}; every held-out task needs the same seeds."
        )
    matrix, runs = np.stack(rows), sizes.pop()
    tasks = rng.integers(0, len(rows), size=(BOOTSTRAP_REPS, len(rows)))
    picks = rng.integers(0, runs, size=(BOOTSTRAP_REPS, len(rows), runs))
    return matrix[tasks[:, :, None], picks].reshape(BOOTSTRAP_REPS, -1)


def _statistic(block: np.ndarray, statistic: str) -> np.ndarray:
    """``statistic`` of each row of ``block`` (one replicate per row), as metaenvs.aggregates does."""
    if statistic == "mean":
        return block.mean(axis=1)
    cut = block.shape[1] // 4
    return np.sort(block, axis=1)[:, cut : block.shape[1] - cut].mean(axis=1)


def compute_aggregates(
    scores: Mapping[str, Sequence[float]],
    *,
    score_name: str,
    higher_is_better: bool,
    resample_tasks: bool = False,
) -> dict[str, Any]:
    """The aggregates the board ranks by, recomputed from raw scores.

    Args:
        scores: ``task -> scores of its seeds`` (raw metric, or normalised scores).
        score_name: What the scores are (``"mse"``, ``"human_normalized"``).
        higher_is_better: Direction of the score.
        resample_tasks: Bootstrap the tasks too (held-out tasks that are a sample of the distribution).

    Returns:
        ``{"score", "higher_is_better", "iqm", "mean", "n_tasks", "n_runs", "bootstrap"}`` where ``iqm``
        and ``mean`` are ``{"estimate", "low", "high"}``.
    """
    return {
        "score": score_name,
        "higher_is_better": bool(higher_is_better),
        "iqm": interval(scores, "iqm", resample_tasks),
        "mean": interval(scores, "mean", resample_tasks),
        "n_tasks": len(scores),
        "n_runs": int(sum(len(v) for v in scores.values())),
        "bootstrap": {
            "method": "two-level (tasks, then runs within each task)"
            if resample_tasks
            else "stratified (runs resampled within each task)",
            "reps": BOOTSTRAP_REPS,
            "confidence": CONFIDENCE,
            "seed": BOOTSTRAP_SEED,
        },
    }


def probability_of_improvement(
    x: Mapping[str, Sequence[float]], y: Mapping[str, Sequence[float]], higher_is_better: bool
) -> float:
    """P(X > Y) of Agarwal et al. (2021): the mean over tasks of the Mann-Whitney U statistic.

    For each task, the fraction of (run of X, run of Y) pairs where X's run is better (ties count
    one half); "better" is "lower" when ``higher_is_better`` is false.

    Raises:
        InvalidArgumentError: If X and Y were not scored on the same tasks.
    """
    if set(x) != set(y):
        raise InvalidArgumentError("probability_of_improvement needs both entries scored on the same tasks.")
    sign = 1.0 if higher_is_better else -1.0
    per_task = []
    for task in sorted(x):
        a = sign * np.asarray(x[task], dtype=np.float64)[:, None]
        b = sign * np.asarray(y[task], dtype=np.float64)[None, :]
        per_task.append(float(np.mean((a > b) + 0.5 * (a == b))))
    return float(np.mean(per_task))


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
