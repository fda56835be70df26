"""Aggregate scores over tasks x seeds: IQM, mean, bootstrap confidence intervals, probability of
improvement. The one implementation of these statistics: ``metaenvs evaluate`` and the leaderboard
both report :func:`summarize`.

Following Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice"): the
interquartile mean (IQM) is the mean of the middle 50% of all runs, and its uncertainty is
estimated by a *stratified* bootstrap that resamples runs (seeds) with replacement within
each task, so every task keeps its weight. Randomness comes only from the generator passed in
(:func:`summarize` uses the fixed :data:`BOOTSTRAP_SEED`, so its output is bitwise reproducible).

When the held-out tasks are themselves a sample of the distribution (100 sinusoid functions,
100 users) the uncertainty of an aggregate also comes from which tasks were drawn, so
``resample_tasks=True`` makes the bootstrap two-level: each replicate first draws tasks with
replacement, then runs within each drawn task. (Runs of a deterministic protocol are equal
across seeds; the within-task bootstrap alone then gives a zero-width interval.) A fixed
benchmark set, such as Atari's held-out games, keeps the stratified form.

The replicates are drawn as index arrays, all at once, and the statistic is taken of blocks of
replicates (vectorised): 2000 replicates of 100 tasks x 5 seeds take milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from metaenvs.errors import InvalidArgumentError, NonFiniteError

Statistic = Callable[[np.ndarray], float]

BOOTSTRAP_SEED = 20210825
"""Seed of the bootstrap generator of :func:`summarize` (fixed: aggregates are reproducible bitwise)."""
BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95
BLOCK = 250
"""Replicates whose statistic is computed at once (bounds the memory of one sort)."""


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the values between the 25th and 75th percentiles.

    With ``n`` values, ``floor(n / 4)`` are dropped at each end (``scipy.stats.trim_mean(x, 0.25)``).
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise InvalidArgumentError("iqm() needs at least one value.")
    cut = x.size // 4
    return float(x[cut : x.size - cut].mean())


def mean(values: Sequence[float] | np.ndarray) -> float:
    """Arithmetic mean of all values."""
    return float(np.mean(np.asarray(values, dtype=np.float64)))


STATISTICS: dict[str, Statistic] = {"iqm": iqm, "mean": mean}


def score_rows(scores: Mapping[str, Sequence[float]]) -> list[np.ndarray]:
    """One float64 row of run scores per task, in the mapping's order; empty or non-finite rows refused."""
    if not scores:
        raise InvalidArgumentError("No scores to aggregate: pass {task: [score per seed, ...]}.")
    rows = []
    for task, values in scores.items():
        row = np.asarray(values, dtype=np.float64).ravel()
        if row.size == 0:
            raise InvalidArgumentError(f"Task {task!r} has no scores.")
        if not np.all(np.isfinite(row)):
            raise NonFiniteError(f"Task {task!r} has non-finite scores {row.tolist()}.")
        rows.append(row)
    return rows


def by_task(records: Sequence[Mapping[str, Any]], key: str = "final") -> dict[str, list[float]]:
    """``task_id -> [score of each seed]`` (tasks sorted, seeds in ascending order) from result records."""
    rows: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        rows.setdefault(str(record["task_id"]), []).append((int(record["seed"]), float(record[key])))
    return {task: [score for _, score in sorted(pairs)] for task, pairs in sorted(rows.items())}


def stratified_bootstrap_ci(
    scores: Mapping[str, Sequence[float]],
    statistic: str | Statistic = "iqm",
    rng: np.random.Generator | None = None,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    resample_tasks: bool = False,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap CI of ``statistic`` over all runs.

    Args:
        scores: ``task -> scores of its runs (seeds)``, resampled in the mapping's order.
        statistic: ``"iqm"``, ``"mean"`` or a function of the pooled run scores.
        rng: The generator of the resampling (required; pass ``numpy.random.default_rng(seed)``).
        reps: Bootstrap replicates.
        confidence: Coverage of the interval.
        resample_tasks: Also draw the tasks with replacement (two-level bootstrap), for held-out
            tasks that are a sample of the distribution; every task then needs the same number of runs.

    Returns:
        ``(estimate, low, high)``.

    Raises:
        InvalidArgumentError: Without a generator, with a bad confidence or statistic, no scores, or
            (two-level) tasks with different numbers of runs.
        NonFiniteError: If a score is NaN or infinite.
    """
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgumentError("stratified_bootstrap_ci needs rng=numpy.random.default_rng(seed).")
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}.")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise InvalidArgumentError(f"reps must be a positive int, got {reps!r}.")
    if isinstance(statistic, str) and statistic not in STATISTICS:
        raise InvalidArgumentError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}.")
    fn = STATISTICS[statistic] if isinstance(statistic, str) else statistic
    rows = score_rows(scores)
    resampled = _two_level(rows, rng, reps) if resample_tasks else _stratified(rows, rng, reps)
    replicates = np.concatenate(
        [_statistic(resampled[i : i + BLOCK], statistic) for i in range(0, reps, BLOCK)]
    )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return float(fn(np.concatenate(rows))), float(low), float(high)


def _stratified(rows: list[np.ndarray], rng: np.random.Generator, reps: int) -> np.ndarray:
    """``(reps, runs)``: every task's runs resampled within the task, task by task."""
    return np.concatenate([row[rng.integers(0, row.size, size=(reps, row.size))] for row in rows], axis=1)


def _two_level(rows: list[np.ndarray], rng: np.random.Generator, reps: int) -> np.ndarray:
    """``(reps, runs)``: tasks drawn with replacement, then runs within each drawn task."""
    sizes = {row.size for row in rows}
    if len(sizes) != 1:
        raise InvalidArgumentError(
            f"Tasks have different numbers of runs {sorted(sizes)}; every held-out task needs the same seeds."
        )
    matrix, runs = np.stack(rows), sizes.pop()
    tasks = rng.integers(0, len(rows), size=(reps, len(rows)))
    picks = rng.integers(0, runs, size=(reps, len(rows), runs))
    return matrix[tasks[:, :, None], picks].reshape(reps, -1)


def _statistic(block: np.ndarray, statistic: str | Statistic) -> np.ndarray:
    """``statistic`` of each row of ``block`` (one replicate per row)."""
    if statistic == "mean":
        return block.mean(axis=1)
    if statistic == "iqm":
        cut = block.shape[1] // 4
        return np.sort(block, axis=1)[:, cut : block.shape[1] - cut].mean(axis=1)
    return np.asarray([float(statistic(row)) for row in block])  # type: ignore[operator]


def interval(
    scores: Mapping[str, Sequence[float]], statistic: str, resample_tasks: bool = False
) -> dict[str, float]:
    """``{"estimate", "low", "high"}`` of ``statistic`` with the fixed bootstrap of :func:`summarize`
    (:data:`BOOTSTRAP_REPS` replicates from ``default_rng(BOOTSTRAP_SEED)``, tasks in sorted order)."""
    ordered = {task: scores[task] for task in sorted(scores)}
    est, low, high = stratified_bootstrap_ci(
        ordered, statistic, np.random.default_rng(BOOTSTRAP_SEED), resample_tasks=resample_tasks
    )
    return {"estimate": est, "low": low, "high": high}


def compute_aggregates(
    scores: Mapping[str, Sequence[float]],
    *,
    score_name: str,
    higher_is_better: bool,
    resample_tasks: bool = False,
) -> dict[str, Any]:
    """IQM and mean with bootstrap CIs of ``task -> [score per seed]`` (see :func:`summarize`)."""
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


def summarize(
    records: Sequence[Mapping[str, Any]],
    *,
    metric: str,
    higher_is_better: bool,
    resample_tasks: bool,
    key: str = "final",
) -> dict[str, Any]:
    """The aggregates of result records, as ``metaenvs evaluate`` prints and the board stores them.

    Args:
        records: Records with ``task_id``, ``seed`` and ``key`` (one per task x seed).
        metric: What the scores are (``"mse"``, ``"human_normalized"``), stored as ``score``.
        higher_is_better: Direction of the score.
        resample_tasks: Two-level bootstrap (tasks, then runs), for held-out tasks that are a sample
            of the distribution; else the stratified bootstrap (runs within each task).
        key: The record field aggregated (``"final"``, ``"auc"``, ``"normalized_final"``).

    Returns:
        ``{"score", "higher_is_better", "iqm", "mean", "n_tasks", "n_runs", "bootstrap"}``, where ``iqm``
        and ``mean`` are ``{"estimate", "low", "high"}`` (95% percentile CIs, 2000 replicates, fixed seed).
    """
    return compute_aggregates(
        by_task(records, key),
        score_name=metric,
        higher_is_better=higher_is_better,
        resample_tasks=resample_tasks,
    )


def probability_of_improvement(
    x: Mapping[str, Sequence[float]], y: Mapping[str, Sequence[float]], higher_is_better: bool
) -> float:
    """P(X > Y) of Agarwal et al. (2021): the mean over tasks of the Mann-Whitney U statistic.

    For each task, the fraction of (run of X, run of Y) pairs where X's run is better (ties count
    one half); "better" is "lower" when ``higher_is_better`` is false.

    Raises:
        InvalidArgumentError: If X and Y were not scored on the same tasks.
    """
    if set(x) != set(y) or not x:
        raise InvalidArgumentError("probability_of_improvement needs both entries scored on the same tasks.")
    sign = 1.0 if higher_is_better else -1.0
    per_task = []
    for task in sorted(x):
        a = sign * np.asarray(x[task], dtype=np.float64)[:, None]
        b = sign * np.asarray(y[task], dtype=np.float64)[None, :]
        per_task.append(float(np.mean((a > b) + 0.5 * (a == b))))
    return float(np.mean(per_task))
