"""Every registered distribution keeps the contract (metaenvs.testing), parametrised over ids."""

import importlib.util

import numpy as np
import pytest
import torch

import metaenvs
from metaenvs.errors import ConformanceError, InvalidArgumentError, WrongDistributionError
from metaenvs.testing import check_task_distribution

DEFAULT_RUN_METAWORLD = ("MetaWorld/ML1-reach-v3", "MetaWorld/ML10-v3")
"""The Meta-World ids the default run covers (one ML1, ML10); the other 51 run under -m slow."""


def _param(id: str):
    if not id.startswith("MetaWorld/"):
        return id
    if importlib.util.find_spec("metaworld") is None:
        return pytest.param(id, marks=pytest.mark.skip(reason="needs pip install 'metaenvs[metaworld]'"))
    return id if id in DEFAULT_RUN_METAWORLD else pytest.param(id, marks=pytest.mark.slow)


IDS = [_param(id) for id in sorted(metaenvs.registry)]


@pytest.mark.parametrize("id", IDS)
def test_conformance(id):
    check_task_distribution(metaenvs.make(id, seed=0))


@pytest.mark.parametrize("id", IDS)
def test_same_seed_same_batches_element_by_element(id):
    a, b = metaenvs.make(id, seed=0), metaenvs.make(id, seed=0)
    for split in a.splits:
        ta = a.sample(np.random.default_rng(5), split, 4)
        tb = b.sample(np.random.default_rng(5), split, 4)
        assert [t.to_json() for t in ta] == [t.to_json() for t in tb]
        if a.kind == "supervised":
            for x, y in zip(ta, tb, strict=True):
                dx, dy = x.load(), y.load()
                assert torch.equal(dx.x_train, dy.x_train) and torch.equal(dx.y_test, dy.y_test)


@pytest.mark.parametrize("id", IDS)
def test_splits_are_disjoint_and_hash_is_stable(id):
    dist = metaenvs.make(id, seed=0)
    manifest = dist.split_manifest()
    ids = [(s, t) for s, tasks in manifest.items() for t in tasks]
    params = [t.to_json() for s in manifest for t in dist.tasks(s)]
    assert len(set(params)) == len(params)
    assert len({t for _, t in ids}) == len(ids)
    assert dist.split_hash() == metaenvs.make(id, seed=0).split_hash()


@pytest.mark.parametrize("id", IDS)
def test_task_json_round_trip_and_wrong_distribution(id):
    dist = metaenvs.make(id, seed=0)
    task = dist.tasks("test")[0]
    assert dist.task_from_json(task.to_json()) == task
    other = next(i for i in sorted(metaenvs.registry) if i != id and not i.startswith("MetaWorld/"))
    with pytest.raises(WrongDistributionError, match=f"comes from {id}"):
        metaenvs.make(other).check_task(task)


def test_different_seeds_give_different_held_out_tasks():
    a = metaenvs.make("Synthetic/Sinusoid-v0", seed=0)
    b = metaenvs.make("Synthetic/Sinusoid-v0", seed=1)
    assert a.split_hash() != b.split_hash()
    assert a.tasks("test")[0].params != b.tasks("test")[0].params


def test_control_split_ranges_do_not_overlap():
    from metaenvs.control.physics import CartPolePhysics, PendulumPhysics

    for cls in (CartPolePhysics, PendulumPhysics):
        for name, by_split in cls.ranges.items():
            (tr_lo, tr_hi), (te_lo, te_hi) = by_split["train"], by_split["test"]
            assert tr_hi <= te_lo or te_hi <= tr_lo, (cls.__name__, name)
    dist = metaenvs.make("Control/CartPolePhysics-v0")
    test_lengths = [t.params["length"] for t in dist.tasks("test")]
    train_lengths = [t.params["length"] for t in dist.sample(np.random.default_rng(0), "train", 50)]
    assert max(train_lengths) < min(test_lengths)


def test_physics_reach_the_env(cartpole):
    task = cartpole.tasks("test")[0]
    env = task.make_env()
    assert env.unwrapped.length == task.params["length"]
    assert env.unwrapped.polemass_length == pytest.approx(task.params["length"] * task.params["masspole"])


def test_bad_sample_arguments(sinusoid):
    with pytest.raises(InvalidArgumentError, match="positive int"):
        sinusoid.sample(np.random.default_rng(0), "train", 0)
    with pytest.raises(InvalidArgumentError, match="Generator"):
        sinusoid.sample(0, "train", 2)
    with pytest.raises(InvalidArgumentError, match="no split 'tset'"):
        sinusoid.sample(np.random.default_rng(0), "tset", 2)
    with pytest.raises(InvalidArgumentError, match="infinite"):
        sinusoid.tasks("train")


def test_conformance_catches_a_non_deterministic_distribution(scratch_registry):
    metaenvs.register("Mine/Flaky-v0", "tests.flaky:FlakySinusoid")
    with pytest.raises(ConformanceError, match="different"):
        check_task_distribution(metaenvs.make("Mine/Flaky-v0"))


def test_supervised_task_as_bandit_env(sinusoid):
    env = sinusoid.tasks("test")[0].make_env()
    env.reset(seed=0)
    data = sinusoid.tasks("test")[0].load()
    _, reward, terminated, _, info = env.step(np.array([0.0], dtype=np.float32))
    assert terminated
    assert reward == pytest.approx(-float(data.y_train[info["index"]] ** 2), rel=1e-5)
