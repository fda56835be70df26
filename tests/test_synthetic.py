"""Synthetic families: formulas against hand computation, in float64."""

import math

import numpy as np
import pytest
import torch

import metaenvs
from agents import make_agent
from metaenvs.synthetic.amaml import alpine, cos_mixture
from metaenvs.synthetic.himmelblau import rotated_himmelblau


def row(cx, cy, angle, variant="template"):
    from metaenvs.synthetic.himmelblau import VARIANTS

    return torch.tensor([[cx, cy, angle, *VARIANTS[variant]]], dtype=torch.float64)


def test_himmelblau_template_by_hand():
    # Himmelblau's minimum (3, 2) maps to (8, 7) in the template centred at (5, 5).
    assert float(rotated_himmelblau(torch.tensor([[8.0, 7.0]], dtype=torch.float64), row(5, 5, 0))) == 0.0
    x, y = 1.5, -2.0  # the template T(x, y), unrotated, centred at (5, 5)
    expected = ((x**2 - 10 * x + y + 9) ** 2 + (x + y**2 - 10 * y + 13) ** 2) / 3
    value = rotated_himmelblau(torch.tensor([[x, y]], dtype=torch.float64), row(5, 5, 0))
    assert float(value) == pytest.approx(expected, rel=1e-12)


def test_himmelblau_code_variant_by_hand():
    # The authors' Loss: u, v = R(a)(p - c) / 3; 0.738 (u^2 + v - 11)^2 + 0.995 (u + v^2 - 7)^2.
    p, c, a = np.array([1.0, 2.0]), np.array([5.0, 12.0]), 0.91924315
    u = (math.cos(a) * (p[0] - c[0]) - math.sin(a) * (p[1] - c[1])) / 3
    v = (math.sin(a) * (p[0] - c[0]) + math.cos(a) * (p[1] - c[1])) / 3
    expected = 0.73845121 * (u**2 + v - 11) ** 2 + 0.9954126 * (u + v**2 - 7) ** 2
    value = rotated_himmelblau(torch.tensor(p[None, :], dtype=torch.float64), row(5, 12, a, "code"))
    assert float(value) == pytest.approx(expected, rel=1e-12)
    task = metaenvs.make("Synthetic/RotatedHimmelblau-v0").tasks("train")[0]
    assert (task.params["centre_x"], task.params["centre_y"], task.params["rotation"]) == (5.0, 12.0, a)


def test_himmelblau_rotation_and_shift():
    dist = metaenvs.make("Synthetic/RotatedHimmelblau-v0", variant="template")
    p = dist.tasks("test")[2].params
    assert math.hypot(p["centre_x"] - 5, p["centre_y"] - 5) == pytest.approx(7.0)
    a = p["rotation"]  # the rotated image of Himmelblau's minimum (3, 2) is a minimum of the task
    inverse = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) @ np.array([3.0, 2.0])
    point = torch.tensor([[p["centre_x"] + inverse[0], p["centre_y"] + inverse[1]]], dtype=torch.float64)
    assert float(rotated_himmelblau(point, row(p["centre_x"], p["centre_y"], a))) == pytest.approx(
        0, abs=1e-10
    )


def test_point_agent_descends_a_himmelblau_task():
    dist = metaenvs.make("Synthetic/RotatedHimmelblau-v0")
    agent = make_agent(dist, seed=0)
    curve = agent.learn(dist.tasks("test")[0], 100)
    assert curve.values[-1] < curve.values[0]


def test_cos_mixture_and_alpine_by_hand():
    x = np.array([[0.3, -0.7]])
    p = {"c": 0.5, "phase": 1.0, "freq": 4.0}
    expected = -0.5 * (math.cos(4 * math.pi * 0.3 + 1) + math.cos(4 * math.pi * -0.7 + 1)) - (0.09 + 0.49)
    assert cos_mixture(x, p)[0] == pytest.approx(expected)
    q = {"k1": 2.0, "k2": -3.0}
    x = np.array([[4.0, -6.0]])
    expected = abs(4 * math.sin(4 + math.pi + 2 * math.pi / 12) + 0.4) + abs(
        -6 * math.sin(-6 + math.pi - 3 * math.pi / 12) - 0.6
    )
    assert alpine(x, q)[0] == pytest.approx(expected)


@pytest.mark.parametrize("name", ["CosMixture", "Alpine"])
@pytest.mark.parametrize("shots", [50, 100])
def test_amaml_families_shapes_and_scaler(name, shots):
    dist = metaenvs.make(f"Synthetic/{name}{shots}shot-v0")
    assert dist.splits == {"train": 100, "val": 20, "test": 100}
    data = dist.tasks("test")[0].load()
    assert data.x_train.shape == (shots, 2) and data.x_query.shape == (shots, 2) and data.metric == "nrmse"
    ys = torch.cat([t.load().y_test for t in dist.tasks("train")[:20]])
    assert abs(float(ys.mean())) < 0.5 and 0.5 < float(ys.std()) < 1.5


def test_alpine_shared_shift_reproduces_the_code():
    dist = metaenvs.make("Synthetic/Alpine50shot-v0", alpine_shared_shift=True)
    assert all(t.params["k1"] == t.params["k2"] for t in dist.tasks("train"))
