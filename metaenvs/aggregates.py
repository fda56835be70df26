"""Aggregate scores over tasks x seeds: IQM, mean, and stratified-bootstrap confidence intervals.

Following Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice"): the
interquartile mean (IQM) is the mean of the middle 50% of all runs, and its uncertainty is
estimated by a *stratified* bootstrap that resamples runs (seeds) with replacement within
each task, so every task keeps its weight. Randomness comes only from the generator passed in.

When the held-out tasks are themselves a sample of the distribution (100 sinusoid functions,
100 users) the uncertainty of an aggregate also comes from which tasks were drawn, so
``resample_tasks=True`` makes the bootstrap two-level: each replicate first draws tasks with
replacement, then runs within each drawn task. (Runs of a deterministic protocol are equal
across seeds; the within-task bootstrap alone then gives a zero-width interval.) A fixed
benchmark set, such as Atari's held-out games, keeps the stratified form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from metaenvs.errors import InvalidArgumentError, NonFiniteError

Statistic = Callable[[np.ndarray], float]


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


def stratified_bootstrap_ci(
    scores: Mapping[str, Sequence[float]],
    statistic: str | Statistic = "iqm",
    rng: np.random.Generator | None = None,
    reps: int = 2000,
    confidence: float = 0.95,
    resample_tasks: bool = False,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap CI of ``statistic`` over all runs.

    Args:
        scores: ``task -> scores of its runs (seeds)``.
        statistic: ``"iqm"``, ``"mean"`` or a function of the pooled run scores.
        rng: The generator of the resampling (required; pass ``numpy.random.default_rng(seed)``).
        reps: Bootstrap replicates.
        confidence: Coverage of the interval.
        resample_tasks: Also draw the tasks with replacement (two-level bootstrap), for held-out
            tasks that are a sample of the distribution.

    Returns:
        ``(estimate, low, high)``.
    """
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgumentError("stratified_bootstrap_ci needs rng=numpy.random.default_rng(seed).")
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}.")
    fn = STATISTICS[statistic] if isinstance(statistic, str) else statistic
    rows = score_rows(scores)
    estimate = fn(np.concatenate(rows))
    replicates = np.empty(int(reps))
    for r in range(int(reps)):
        drawn = [rows[i] for i in rng.integers(0, len(rows), len(rows))] if resample_tasks else rows
        replicates[r] = fn(np.concatenate([row[rng.integers(0, row.size, row.size)] for row in drawn]))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return float(estimate), float(low), float(high)
