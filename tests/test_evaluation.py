import json

import numpy as np
import pytest
import torch

from agents import SupervisedAgent
from metaenvs.errors import InvalidArgumentError, WrongDistributionError
from metaenvs.evaluation import evaluate
from metaenvs.metrics import curve_auc, mean_ci, nrmse


def test_auc_matches_hand_computation():
    # Leap's compute_auc: sum over i of ((x[i] - x[i-1]) / 2 + x[i-1]) / T, T = number of points
    x = [1.0, 2.0, 4.0]
    by_hand = sum(((x[i] - x[i - 1]) / 2 + x[i - 1]) / len(x) for i in range(1, len(x)))
    assert curve_auc(x) == pytest.approx(by_hand) == pytest.approx(1.5)


def test_nrmse_matches_hand_computation():
    pred, y = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 4.0], dtype=torch.float64)
    assert float(nrmse(pred, y)) == pytest.approx(np.sqrt((0.0 + 4.0) / 2))


def test_mean_ci_matches_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2)


def test_evaluate_covers_every_test_task_and_seed(sinusoid, tmp_path):
    agent = SupervisedAgent.for_distribution(sinusoid)
    protocol = sinusoid.protocol.customised(budget=4)
    result = evaluate(agent, sinusoid, None, protocol, out=tmp_path / "r.json")
    assert len(result.records) == len(sinusoid.tasks("test")) * len(protocol.seeds)
    assert {(r["task_id"], r["seed"]) for r in result.records} == {
        (t.id, s) for t in sinusoid.tasks("test") for s in protocol.seeds
    }
    record = result.records[0]
    assert record["auc"] == pytest.approx(curve_auc(record["curve"]["values"]))
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["protocol_hash"] == protocol.hash and data["split_hash"] == sinusoid.split_hash()
    assert data["init"]["kind"] == "scratch" and len(data["records"][0]["curve"]["values"]) == 5


def test_evaluate_from_init_is_deterministic(sinusoid):
    agent = SupervisedAgent.for_distribution(sinusoid)
    init = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    protocol = sinusoid.protocol.customised(budget=3, seeds=(0, 1))
    a = evaluate(agent, sinusoid, init, protocol)
    b = evaluate(agent, sinusoid, init, protocol)
    assert a.scores() == b.scores()


def test_evaluate_refuses_foreign_protocol_and_bad_init(sinusoid, cartpole):
    agent = SupervisedAgent.for_distribution(sinusoid)
    with pytest.raises(WrongDistributionError, match="belongs to Control"):
        evaluate(agent, sinusoid, None, cartpole.protocol)
    with pytest.raises(InvalidArgumentError, match="init must be"):
        evaluate(agent, sinusoid, 42, sinusoid.protocol.customised(budget=1))
