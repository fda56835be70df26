"""Defaults that train (#14): for every (algorithm, family) pair that ``metaenvs train`` accepts, a
short meta-training run with the defaults the CLI uses (the algorithm's own, with the family's
``meta_defaults`` over them) stays finite, and the initialization it learns does no worse on held-out
tasks than training from scratch (paired: same tasks, same seed, same budget).

Shortened for the test: 10 meta steps of 3 tasks (50 where noted; RL: 5 meta steps of 2 tasks, 2,000
timesteps), then
5 held-out tasks (RL: 3) with one seed. "No worse" allows only float-level ties (1e-6 relative), which
occur where the meta-gradient vanishes. Expensive families (vision, Pendulum, the mixed classic-control
list, Atari) run under
``-m slow``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import metaenvs
from agents import make_agent
from baselines import ALGORITHMS, make_meta_learner, meta_train

FIRST_ORDER = ("leap", "reptile", "fomaml", "fomamlpp", "cts", "mtl", "scratch")
SUPERVISED = [
    "Synthetic/Sinusoid-v0",
    "Synthetic/CosMixture50shot-v0",
    "Synthetic/Alpine50shot-v0",
    "Synthetic/RotatedHimmelblau-v0",
    "Ratings/Jester1_10shot15val-v0",
]
RL = ["Control/CartPolePhysics-v0"]
SLOW = [
    "Vision/Omniglot5way1shot-v0",
    "Vision/OmniglotAlphabets-v0",
    "Control/PendulumPhysics-v0",
    "Control/ClassicControl-v1",  # also meta-trained through the CLI by tests/test_spaces.py
]


LOSES_TO_SCRATCH = {
    # A measured finding, not hidden: Leap's initialization scores worse than scratch on the held-out
    # rotations of Himmelblau after 50 meta steps (0.0019 against 0.0014 on 5 tasks; also at meta steps of
    # 0.01 and 0.03, while 0.3 happened to win: noise, so no per-family value is picked to pass this
    # test). Every start converges to some minimum within 0.001-0.003 there, so the final loss mostly
    # says which basin a start falls into. strict=True: the test fails once the pair stops losing.
    ("Synthetic/RotatedHimmelblau-v0", "leap"),
    # MAML, now differentiating through the protocol's SGD with momentum (it used plain SGD before and
    # its meta-gradient nearly vanished, a tie): 0.0021 against 0.0014 after 50 meta steps.
    ("Synthetic/RotatedHimmelblau-v0", "maml"),
    # Vision (slow), after 10 meta steps of 3 tasks, on 5 held-out tasks with one seed, they score
    # below scratch (Omniglot alphabets error 0.172 leap, 0.160 reptile, 0.162 mtl, 0.158 cts against
    # 0.156; 5-way 1-shot within 1-4 points). At 100 meta steps of 5 episodes on 40 test episodes x 2
    # seeds (benchmarks/defaults.py, benchmarks/results/defaults_omniglot5w1s; 0.1 % of Reptile's 100k
    # meta steps), with the family's defaults chosen on val, the 5-way 1-shot differences from scratch's
    # 0.714 are -0.009 +- 0.022 (leap), +0.010 +- 0.021 (reptile), -0.018 +- 0.022 (cts), +0.006 +- 0.020
    # (mtl): ties; fomaml and fomamlpp gain 0.19. With the algorithms' own meta steps Leap, Reptile and
    # CTS lost 0.07-0.10 there.
    ("Vision/Omniglot5way1shot-v0", "leap"),
    ("Vision/Omniglot5way1shot-v0", "reptile"),
    ("Vision/Omniglot5way1shot-v0", "fomamlpp"),
    ("Vision/OmniglotAlphabets-v0", "leap"),
    ("Vision/OmniglotAlphabets-v0", "reptile"),
    ("Vision/OmniglotAlphabets-v0", "cts"),
    ("Vision/OmniglotAlphabets-v0", "mtl"),
    # CartPole at this test's scale (5 meta steps of 2 tasks x 2,000 timesteps, 3 held-out tasks x 2,000:
    # returns of about 20, a barely trained policy): since the SB3 agent initialises with SB3's own code
    # (#17), these score below scratch's 19.7 (fomaml 17.0, fomamlpp 19.0, cts 17.0, mtl 19.0); with the
    # previous copied gain table they scored at or above it. Differences of this size at 2,000 steps are
    # within seed noise; the test keeps reporting them rather than tuning per-pair values to pass.
    ("Control/CartPolePhysics-v0", "fomaml"),
    ("Control/CartPolePhysics-v0", "fomamlpp"),
    ("Control/CartPolePhysics-v0", "cts"),
    ("Control/CartPolePhysics-v0", "mtl"),
}
META_STEPS = {"Synthetic/RotatedHimmelblau-v0": 50, "Ratings/Jester1_10shot15val-v0": 50}
"""Families whose first 10 meta steps move the initialization by less than the noise of a 5-task
comparison (and where divergence showed only after 30-50 steps): they run 50."""
NEEDS_DATA = {"Ratings/Jester1_10shot15val-v0": "jester1", "Vision/Omniglot5way1shot-v0": "omniglot"}
NEEDS_DATA["Vision/OmniglotAlphabets-v0"] = "omniglot"
COSTLY = ("amaml", "adjoint")
REFUSED = {("Synthetic/RotatedHimmelblau-v0", a) for a in ("mtl", "adjoint", "imaml", "amaml")}
"""Pairs ``train`` refuses up front: MultiTask needs a body (the model is a single point); the adjoint,
iMAML and A-MAML are defined for gradient descent, and this protocol's inner loop is SGD with momentum."""


def _pairs(families, algos, marks=()):
    out = []
    for f in families:
        for a in algos:
            if (f, a) in REFUSED:
                continue
            lose = (
                [pytest.mark.xfail(strict=True, reason="loses to scratch (measured)")]
                if (f, a) in LOSES_TO_SCRATCH
                else []
            )
            extra = [marks] if isinstance(marks, pytest.MarkDecorator) else list(marks)
            if f in NEEDS_DATA:  # on generated stand-in ratings there is nothing to meta-learn
                extra.append(pytest.mark.real_data(NEEDS_DATA[f]))
            if a in COSTLY and f != "Synthetic/Sinusoid-v0":
                extra.append(pytest.mark.slow)  # A-MAML's flow and the adjoint cost 5-35 s a pair
            out.append(pytest.param(f, a, marks=[*extra, *lose], id=f"{f}-{a}"))
    return out


def _accepted(dist, algo) -> bool:
    return dist.kind == "supervised" or algo in FIRST_ORDER


def held_out_score(dist, init, tasks, budget) -> float:
    agent = make_agent(dist, seed=0)
    scores = []
    for task in tasks:
        agent.reset(0)
        if init is not None:
            agent.set_parameters(init)
        curve = agent.learn(task, budget, seed=0)
        scores.append(agent.evaluate(task, seed=0, curve=curve)[dist.protocol.metric])
    return float(np.mean(scores))


@pytest.mark.parametrize(
    ("family", "algo"),
    _pairs(SUPERVISED, sorted(ALGORITHMS))
    + _pairs(RL, FIRST_ORDER)
    + _pairs(SLOW, FIRST_ORDER, pytest.mark.slow),
)
def test_defaults_train_every_accepted_pair(family, algo):
    dist = metaenvs.make(family)
    assert _accepted(dist, algo)
    rl = dist.kind == "rl"
    agent = make_agent(dist, seed=0)
    shared = getattr(agent, "shared_parameters", None)
    learner = make_meta_learner(algo, dist, **({"params": shared} if shared else {}))
    budget = 2000 if rl else dist.protocol.budget
    meta_steps = 5 if rl else META_STEPS.get(family, 10)
    result = meta_train(
        agent, dist, learner, meta_steps=meta_steps, meta_batch_size=2 if rl else 3,
        inner_steps=budget, seed=0, progress=False,
    )  # fmt: skip
    values = [row["final_value"] for row in result.history if row["final_value"] is not None]
    assert values and all(math.isfinite(v) for v in values)
    assert all(bool(v.isfinite().all()) for v in result.init.values())
    tasks = dist.tasks(dist.protocol.split)[: 3 if rl else 5]
    learned = held_out_score(dist, result.init, tasks, budget)
    scratch = held_out_score(dist, None, tasks, budget)
    tie = 1e-6 * abs(scratch)
    if dist.protocol.higher_is_better:
        assert learned >= scratch - tie, f"{algo} on {family}: {learned} < scratch {scratch}"
    else:
        assert learned <= scratch + tie, f"{algo} on {family}: {learned} > scratch {scratch}"


@pytest.mark.parametrize("algo", sorted(set(ALGORITHMS) - set(FIRST_ORDER)))
def test_second_order_learners_are_refused_up_front_on_rl(tmp_path, capsys, algo):
    from metaenvs.cli import main

    argv = [
        "train",
        "--dist",
        "Control/CartPolePhysics-v0",
        "--algo",
        algo,
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(argv) == 2
    assert "first-order" in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["adjoint", "imaml", "amaml"])
def test_gradient_descent_learners_are_refused_on_a_momentum_protocol(tmp_path, capsys, algo):
    from metaenvs.cli import main

    argv = ["train", "--dist", "Synthetic/RotatedHimmelblau-v0", "--algo", algo, "--out", str(tmp_path)]
    assert main([*argv, "--no-progress"]) == 2
    assert "defined for inner sgd steps" in capsys.readouterr().err


def test_multitask_pretraining_is_refused_where_the_model_has_no_body(tmp_path, capsys):
    from metaenvs.cli import main

    argv = ["train", "--dist", "Synthetic/RotatedHimmelblau-v0", "--algo", "mtl", "--out", str(tmp_path)]
    assert main([*argv, "--no-progress"]) == 2
    assert "no body" in capsys.readouterr().err
