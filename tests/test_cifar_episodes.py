"""CIFAR-FS and FC100: the shipped class lists, and episodes end to end from generated CIFAR-100 files."""

from __future__ import annotations

import numpy as np
import pytest

import metaenvs
from metaenvs.data import splits
from metaenvs.data.vision import vision
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.testing import check_task_distribution


def test_the_class_lists_have_the_published_sizes_and_are_disjoint():
    lists = {"fs": splits.cifar_fs, "fc": splits.fc100}
    sizes = {b: [len(f(s)) for s in splits.SPLITS] for b, f in lists.items()}
    assert sizes == {"fs": [64, 16, 20], "fc": [60, 20, 20]}
    hierarchy = splits.cifar100_hierarchy()
    counts = np.unique(list(hierarchy.values()), return_counts=True)[1]
    assert len(hierarchy) == 100 and counts.tolist() == [5] * 20
    for lists in (splits.cifar_fs, splits.fc100):
        every = [c for s in splits.SPLITS for c in lists(s)]
        assert len(every) == len(set(every)) == 100
    superclasses = {s: {hierarchy[c] for c in splits.fc100(s)} for s in splits.SPLITS}
    assert [len(v) for v in superclasses.values()] == [12, 4, 4]  # FC100 splits whole superclasses
    # TADAM's test superclasses 0, 7, 12, 14
    assert superclasses["test"] == {"aquatic_mammals", "insects", "medium_mammals", "people"}


@pytest.mark.parametrize("dist_id", ["Vision/CIFARFS5way1shot-v0", "Vision/FC1005way5shot-v0"])
def test_episodes_come_from_their_split_classes(dist_id):
    dist = metaenvs.make(dist_id)
    assert dist.splits == {"train": None, "val": 600, "test": 600} and dist.split_rule
    arrays = vision("cifar100")
    names = arrays.class_names
    task = dist.tasks("test")[3]
    assert set(task.params["classes"]) <= set(dist.class_lists()["test"])
    data = task.load()
    assert data.x_train.shape == (5 * dist.shots, 3, 32, 32) and data.x_test.shape == (75, 3, 32, 32)
    for way, name in enumerate(task.params["classes"]):  # each image is one of its class's images
        mine = arrays.images[arrays.labels == names.index(name)].astype(np.float32) / 255
        for x in data.x_train[data.y_train == way]:
            image = x.permute(1, 2, 0).numpy()
            assert np.isclose(mine, image, atol=1e-6).all(axis=(1, 2, 3)).any()
    assert len(set(task.params["images"][0])) == dist.shots + dist.query  # no image twice in a class
    assert dist.split_hash() == metaenvs.make(dist_id).split_hash()
    assert dist.protocol.agent["model"] == {"type": "conv4", "channels": 32}
    assert dist.protocol.agent["lr"] == 0.01


def test_cifar_fs_conforms():
    check_task_distribution(metaenvs.make("Vision/CIFARFS5way1shot-v0", eval_episodes=5))


def test_bad_episode_settings_are_refused():
    with pytest.raises(InvalidArgumentError, match="ways=17"):
        metaenvs.make("Vision/CIFARFS5way1shot-v0", ways=17)  # the val split has 16 classes
    with pytest.raises(InvalidArgumentError, match="shots \\+ query = 601"):
        metaenvs.make("Vision/FC1005way1shot-v0", shots=300, query=301)
    dist = metaenvs.make("Vision/CIFARFS5way1shot-v0", shots=10, query=15)  # 25 > the 20 generated per class
    with pytest.raises(DataError, match="incomplete"):
        dist.tasks("test")
