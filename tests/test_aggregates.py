"""IQM, the bootstrap CIs and the probability of improvement of metaenvs.aggregates (the one
implementation the board and ``metaenvs evaluate`` share), against hand computations and scipy."""

import numpy as np
import pytest
from scipy.stats import trim_mean

from metaenvs.aggregates import (
    BOOTSTRAP_SEED,
    interval,
    iqm,
    probability_of_improvement,
    stratified_bootstrap_ci,
    summarize,
)
from metaenvs.errors import InvalidArgumentError, NonFiniteError


def test_iqm_by_hand_and_against_scipy():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    x = np.random.default_rng(0).normal(size=37)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25), rel=1e-12)
    with pytest.raises(InvalidArgumentError):
        iqm([])


def _hand_iqm(values):
    v = sorted(values)
    cut = len(v) // 4
    kept = v[cut : len(v) - cut]
    return sum(kept) / len(kept)


def _hand_quantiles(replicates, confidence=0.95):
    return tuple(np.quantile(np.asarray(replicates), [(1 - confidence) / 2, (1 + confidence) / 2]))


@pytest.mark.parametrize("statistic", ["iqm", "mean"])
def test_stratified_bootstrap_against_a_loop_by_hand(statistic):
    scores = {"a": [1.0, 2.0, 7.0], "b": [10.0, 12.0, 11.0], "c": [5.0, 5.5, 6.0, 9.0]}
    reps = 60
    est, low, high = stratified_bootstrap_ci(scores, statistic, np.random.default_rng(7), reps=reps)
    rng = np.random.default_rng(7)  # the same draws, in the documented order: task by task
    draws = {t: rng.integers(0, len(v), size=(reps, len(v))) for t, v in scores.items()}
    fn = _hand_iqm if statistic == "iqm" else (lambda v: sum(v) / len(v))
    replicates = [fn([scores[t][i] for t in scores for i in draws[t][r]]) for r in range(reps)]
    assert (low, high) == pytest.approx(_hand_quantiles(replicates), abs=1e-12)
    assert est == pytest.approx(fn([x for v in scores.values() for x in v]), abs=1e-12)


def test_two_level_bootstrap_against_a_loop_by_hand():
    scores = {f"t{i}": [float(i), float(i) + 0.5] for i in range(6)}
    reps, names = 40, list(scores)
    _, low, high = stratified_bootstrap_ci(
        scores, "mean", np.random.default_rng(3), reps, resample_tasks=True
    )
    rng = np.random.default_rng(3)
    tasks = rng.integers(0, 6, size=(reps, 6))
    picks = rng.integers(0, 2, size=(reps, 6, 2))
    replicates = [
        np.mean([scores[names[tasks[r, j]]][picks[r, j, k]] for j in range(6) for k in range(2)])
        for r in range(reps)
    ]
    assert (low, high) == pytest.approx(_hand_quantiles(replicates), abs=1e-12)


def test_two_level_mean_ci_matches_the_normal_interval_for_many_tasks():
    x = np.random.default_rng(11).normal(3.0, 2.0, size=400)
    scores = {f"t{i:03d}": [float(v)] for i, v in enumerate(x)}
    est, low, high = stratified_bootstrap_ci(
        scores, "mean", np.random.default_rng(0), 4000, resample_tasks=True
    )
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert est == pytest.approx(x.mean())
    assert low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.1 * half)
    # the within-task (stratified) bootstrap of one run per task is the data itself: zero width
    assert stratified_bootstrap_ci(scores, "mean", np.random.default_rng(0), 50)[1:] == (est, est)


def test_summarize_is_what_the_board_stores_and_is_reproducible():
    rng = np.random.default_rng(5)
    records = [
        {"task_id": f"test/{t}", "seed": s, "final": float(rng.normal()), "auc": 1.0}
        for t in range(8)
        for s in range(3)
    ]
    a = summarize(records, metric="mse", higher_is_better=False, resample_tasks=True)
    b = summarize(list(reversed(records)), metric="mse", higher_is_better=False, resample_tasks=True)
    assert a == b  # bitwise, whatever the record order: a fixed seed and sorted tasks
    assert set(a) == {"score", "higher_is_better", "iqm", "mean", "n_tasks", "n_runs", "bootstrap"}
    assert a["score"] == "mse" and a["higher_is_better"] is False and (a["n_tasks"], a["n_runs"]) == (8, 24)
    assert a["iqm"]["estimate"] == pytest.approx(_hand_iqm([r["final"] for r in records]), abs=1e-12)
    assert a["iqm"]["low"] <= a["iqm"]["estimate"] <= a["iqm"]["high"]
    assert a["bootstrap"]["seed"] == BOOTSTRAP_SEED and a["bootstrap"]["reps"] == 2000
    by_task = {}
    for r in records:
        by_task.setdefault(r["task_id"], []).append(r["final"])
    assert a["mean"] == interval(by_task, "mean", resample_tasks=True)
    auc = summarize(records, metric="auc", higher_is_better=False, resample_tasks=False, key="auc")
    assert auc["mean"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}


def test_probability_of_improvement_by_hand():
    x = {"t1": [3.0, 1.0], "t2": [5.0, 5.0]}
    y = {"t1": [2.0, 2.0], "t2": [5.0, 4.0]}
    # t1: pairs (3>2, 3>2, 1<2, 1<2) -> 0.5; t2: (5=5 -> .5, 5>4, .5, 1) -> 0.75
    assert probability_of_improvement(x, y, True) == pytest.approx(0.625)
    assert probability_of_improvement(x, y, False) == pytest.approx(0.375)
    with pytest.raises(InvalidArgumentError, match="same tasks"):
        probability_of_improvement(x, {"t1": [1.0]}, True)


def test_bad_input():
    with pytest.raises(NonFiniteError, match="pong"):
        stratified_bootstrap_ci({"pong": [1.0, float("nan")]}, "iqm", np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match="default_rng"):
        stratified_bootstrap_ci({"pong": [1.0]}, "iqm", None)
    with pytest.raises(InvalidArgumentError, match="no scores"):
        stratified_bootstrap_ci({"pong": []}, "iqm", np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match="same seeds"):
        stratified_bootstrap_ci(
            {"a": [1.0], "b": [1.0, 2.0]}, "iqm", np.random.default_rng(0), resample_tasks=True
        )
    with pytest.raises(InvalidArgumentError, match="statistic"):
        stratified_bootstrap_ci({"a": [1.0]}, "median", np.random.default_rng(0))
