"""IQM and the stratified bootstrap, against hand computations and scipy."""

import numpy as np
import pytest
from scipy.stats import trim_mean

from metaenvs.aggregates import iqm, stratified_bootstrap_ci
from metaenvs.errors import InvalidArgumentError, NonFiniteError


def test_iqm_by_hand_and_against_scipy():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    x = np.random.default_rng(0).normal(size=37)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25), rel=1e-12)
    with pytest.raises(InvalidArgumentError):
        iqm([])


def test_stratified_bootstrap_is_seeded_and_covers_the_estimate():
    scores = {"breakout": [1.0, 2.0, 3.0], "pong": [10.0, 12.0, 11.0], "freeway": [5.0, 5.5, 6.0]}
    a = stratified_bootstrap_ci(scores, "iqm", np.random.default_rng(1), reps=500)
    b = stratified_bootstrap_ci(scores, "iqm", np.random.default_rng(1), reps=500)
    assert a == b and a[1] <= a[0] <= a[2]
    assert a[0] == pytest.approx(iqm(np.concatenate(list(scores.values()))))
    constant = stratified_bootstrap_ci({"t": [2.0, 2.0]}, "mean", np.random.default_rng(0), reps=50)
    assert constant == (2.0, 2.0, 2.0)


def test_stratified_resampling_keeps_each_task():
    # With one run per task the resample is the data itself: a zero-width interval.
    est, low, high = stratified_bootstrap_ci(
        {"a": [1.0], "b": [9.0]}, "mean", np.random.default_rng(0), reps=100
    )
    assert est == low == high == 5.0


def test_bad_input():
    with pytest.raises(NonFiniteError, match="pong"):
        stratified_bootstrap_ci({"pong": [1.0, float("nan")]}, "iqm", np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match="default_rng"):
        stratified_bootstrap_ci({"pong": [1.0]}, "iqm", None)
    with pytest.raises(InvalidArgumentError, match="no scores"):
        stratified_bootstrap_ci({"pong": []}, "iqm", np.random.default_rng(0))
