"""Trivial baselines: each one by hand on a tiny table, then through evaluate, the CLI and the board."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from baselines.trivial import BASELINES, baselines_for, make_baseline
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, SubmissionError
from metaenvs.evaluation import evaluate
from metaenvs.ratings import RatingsCSV
from metaenvs.supervised_data import SupervisedData


def onehot(items: list[int], width: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(items), width).float()


def column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[:, None]


def rating_task(train: tuple, query: tuple) -> SupervisedData:
    (xi, yi), (xq, yq) = train, query
    return SupervisedData(onehot(xi), column(yi), onehot(xq), column(yq), (4,), 1, "mse", "nrmse")


@pytest.fixture
def ratings_dist(tmp_path):
    """A registered-style ratings family on a generated CSV: 6 users x 4 items, all rated."""
    rng = np.random.default_rng(0)
    rows = [f"u{u},i{i},{int(rng.integers(1, 6))}" for u in range(6) for i in range(4)]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    return RatingsCSV(
        tmp_path / "r.csv", shots=2, query=2, top_items=4, min_ratings=4, test_tasks=2, val_tasks=1
    )


# Two meta-train users, by hand: item 0 rated 1 and 3, item 1 rated 3 and 5, item 2 rated 2 and 0, item 3
# never. Item means 2, 4, 1 (item 3: the global mean 14/6). The held-out user rated items 0 and 1 with 3
# and 6 (mean 4.5; offsets 1 and 2 from the item means, mean offset 1.5) and is scored on items 2, 0, 3.
POOLED = [
    rating_task(([0, 1], [1.0, 3.0]), ([2], [2.0])),
    rating_task(([0], [3.0]), ([1, 2], [5.0, 0.0])),
]
HELD_OUT = rating_task(([0, 1], [3.0, 6.0]), ([2, 0, 3], [2.0, 4.0, 1.0]))
BY_HAND = {
    "global_mean": [14 / 6, 14 / 6, 14 / 6],
    "item_mean": [1.0, 2.0, 14 / 6],
    "user_mean": [4.5, 4.5, 4.5],
    "item_mean_user_offset": [2.5, 3.5, 14 / 6 + 1.5],
}


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_ratings_baselines_by_hand(ratings_dist, name):
    baseline = make_baseline(name, ratings_dist).fit(POOLED)
    pred = baseline.predict(HELD_OUT, HELD_OUT.x_test)
    assert pred.shape == (3, 1)
    torch.testing.assert_close(pred[:, 0], torch.tensor(BY_HAND[name]), rtol=0, atol=1e-6)


def test_ratings_score_by_hand(ratings_dist):
    """The scored value is the protocol metric of those predictions (nRMSE of z-scores: their RMSE)."""
    baseline = make_baseline("item_mean_user_offset", ratings_dist).fit(POOLED)
    task = ratings_dist.tasks("test")[0]
    data = task.load()
    pred = baseline.predict(data, data.x_test)
    expected = float(torch.sqrt(((pred - data.y_test) ** 2).mean()))
    assert baseline.evaluate(task)["nrmse"] == pytest.approx(expected, rel=1e-6)


def test_regression_baselines_by_hand():
    support = SupervisedData(
        column([0.0, 1.0]), column([2.0, 4.0]), column([0.2, 8.0]), column([0.0, 0.0]), (1,), 1, "mse", "mse"
    )
    pooled = [
        SupervisedData(
            column([0.0, 1.0, 2.0]),
            column([1.0, 2.0, 3.0]),
            column([10.0]),
            column([7.0]),
            (1,),
            1,
            "mse",
            "mse",
        )
    ]
    from baselines.trivial import MeanFunction, SupportMean

    mean = SupportMean()  # the maths needs no distribution
    torch.testing.assert_close(mean.predict(support, support.x_test)[:, 0], torch.tensor([3.0, 3.0]))
    knn = MeanFunction()
    knn.neighbours = 2
    with pytest.raises(InvalidArgumentError, match="fit"):
        knn.predict(support, support.x_test)
    knn.fit(pooled)  # x 0, 1, 2, 10 with y 1, 2, 3, 7: the 2 nearest of 0.2 are 0 and 1, of 8.0 are 10 and 2
    torch.testing.assert_close(knn.predict(support, support.x_test)[:, 0], torch.tensor([1.5, 5.0]))


def test_nearest_centroid_by_hand():
    from baselines.trivial import NearestCentroid

    x = torch.tensor([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0]])  # class 0 centroid (0, 1), class 1 (4, 0)
    data = SupervisedData(
        x,
        torch.tensor([0, 0, 1]),
        torch.tensor([[1.0, 1.0], [3.0, 0.0]]),
        torch.tensor([0, 1]),
        (2,),
        2,
        "cross_entropy",
        "accuracy",
    )
    logits = NearestCentroid().predict(data, data.x_test)
    torch.testing.assert_close(logits, -torch.tensor([[1.0, 10.0], [10.0, 1.0]]))


def test_families_and_refusals(ratings_dist):
    import metaenvs

    assert baselines_for(ratings_dist) == ["global_mean", "item_mean", "user_mean", "item_mean_user_offset"]
    assert baselines_for(metaenvs.make("Synthetic/Sinusoid-v0")) == ["support_mean", "mean_function"]
    assert set(BASELINES) >= {
        "global_mean",
        "item_mean",
        "user_mean",
        "item_mean_user_offset",
        "mean_function",
    }
    with pytest.raises(IncompatibleAgentError, match=r"support_mean.*regression.*item_mean_user_offset"):
        make_baseline("support_mean", ratings_dist)
    with pytest.raises(InvalidArgumentError, match="item_mean_user_offset"):
        make_baseline("item_means", ratings_dist)
    with pytest.raises(InvalidArgumentError, match="no parameters"):
        make_baseline("user_mean", ratings_dist).set_parameters({})


def test_baseline_fits_on_meta_train_tasks_only(ratings_dist):
    """Fitted on the train users' data: changing a held-out user's ratings changes no item mean."""
    baseline = make_baseline("item_mean", ratings_dist)
    task = ratings_dist.tasks("test")[0]
    baseline.evaluate(task)
    from baselines.trivial import meta_train_data

    pooled = meta_train_data(ratings_dist)
    assert len(pooled) == ratings_dist.splits["train"]
    expected = copy.deepcopy(baseline.item_means)
    baseline.fit(pooled)
    torch.testing.assert_close(baseline.item_means, expected)


def test_evaluate_submit_and_verify_a_baseline(tmp_path):
    """Under the official protocol, on the board in the same table, verified by a re-run; an edited
    baseline name or an initialization slipped in is refused."""
    import metaenvs
    from leaderboard import Board, format_tables, ranked_protocols
    from leaderboard.validate import load_submission, validate_result
    from leaderboard.verify import verify_entry

    dist = metaenvs.make("Synthetic/Sinusoid-v0")
    baseline = make_baseline("support_mean", dist)
    result = evaluate(baseline, dist, None)
    assert result.protocol_hash == dist.protocol.hash  # the official protocol: ranked with the rest
    assert result.agent == {"type": "baseline", "name": "support_mean"}
    per_task = {}
    for r in result.records:  # every seed of a task scores the same: nothing is random
        per_task.setdefault(r["task_id"], set()).add(r["final"])
    assert all(len(v) == 1 for v in per_task.values())
    board = Board(tmp_path / "board")
    path = result.save(tmp_path / "r.json")
    sub = load_submission(path)
    assert sub.init_key == "baseline:support_mean"
    board.add(sub)
    record = verify_entry(board, sub.entry_id)
    assert record["verified"] and record["runs_differing"] == 0
    table = format_tables(ranked_protocols(board))
    assert "baseline: support_mean" in table and "yes" in table

    data = json.loads(path.read_text())
    for change, message in (
        (lambda d: d["agent"].update(name="item_mean"), "not defined for"),
        (lambda d: d["agent"].update(name="oracle"), "not a baseline"),
        (lambda d: d["agent"].update(neighbours=3), "baseline 'support_mean'"),
    ):
        edited = copy.deepcopy(data)
        change(edited)
        with pytest.raises(SubmissionError, match=message):
            validate_result(edited)


def test_cli_baseline(tmp_path, capsys):
    from metaenvs.cli import main

    out = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                "--dist",
                "Synthetic/Sinusoid-v0",
                "--baseline",
                "support_mean",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["agent"]["name"] == "support_mean"
    assert "baseline: support_mean" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                "--dist",
                "Synthetic/Sinusoid-v0",
                "--baseline",
                "support_mean",
                "--init",
                "x.safetensors",
            ]
        )
        == 2
    )
    assert "takes no --init" in capsys.readouterr().err
