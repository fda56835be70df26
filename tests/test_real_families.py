"""Real-data families: Omniglot alphabets and episodes, MultiCV, image folders, ratings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metaenvs
from agents import SupervisedAgent
from agents.models import Conv4
from baselines import meta_train
from baselines.reptile import Reptile
from metaenvs.data import tables
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.metrics import get_metric
from metaenvs.testing import check_task_distribution
from metaenvs.vision import omniglot as og


class Recorder(Reptile):
    """Reptile that writes down every task it meta-trains on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def on_task_start(self, ctx):
        self.seen.append(ctx.task)
        super().on_task_start(ctx)


# ----- Omniglot alphabets ---------------------------------------------------------------
def test_omniglot_alphabet_split_is_the_listed_one():
    data = tables.omniglot()
    counts = {n: int((data.alphabet == i).sum()) for i, n in enumerate(data.alphabet_names)}
    derived = og.derive_alphabet_split(counts)
    assert derived == {
        "test": list(og.TEST_ALPHABETS),
        "val": list(og.VAL_ALPHABETS),
        "train": list(og.TRAIN_ALPHABETS),
    }
    dropped = sorted(n for n, c in counts.items() if c < 20)
    assert dropped == [
        "Blackfoot_(Canadian_Aboriginal_Syllabics)",
        "Inuktitut_(Canadian_Aboriginal_Syllabics)",
        "Ojibwe_(Canadian_Aboriginal_Syllabics)",
        "Tagalog",
    ]
    dist = metaenvs.make("Vision/OmniglotAlphabets-v0")
    assert [t.params["alphabet"] for t in dist.tasks("test")] == list(og.TEST_ALPHABETS)
    assert not set(og.TEST_ALPHABETS) & set(og.TRAIN_ALPHABETS + og.VAL_ALPHABETS)
    five = metaenvs.make("Vision/OmniglotAlphabets-v0", num_alphabets=5)
    assert [t.params["alphabet"] for t in five.tasks("train")] == list(og.TRAIN_ALPHABETS[:5])


def test_omniglot_split_hash_is_pinned():
    dist = metaenvs.make("Vision/OmniglotAlphabets-v0")
    assert dist.split_hash() == "55e74999cebd2fdf73b720f7e441c1905e67b0f38d71717d4d1345385d8df6ba"
    # The seed does not move a listed split, and where the data lives does not change the hash.
    assert metaenvs.make("Vision/OmniglotAlphabets-v0", seed=7).split_hash() == dist.split_hash()
    moved = metaenvs.make("Vision/OmniglotAlphabets-v0", data_dir="/elsewhere")
    assert moved.split_hash() == dist.split_hash()


def test_alphabet_task_holds_15_train_and_5_test_images_per_character():
    dist = metaenvs.make("Vision/OmniglotAlphabets-v0")
    task = dist.tasks("test")[4]  # Latin
    data = task.load()
    assert data.x_train.shape == (300, 1, 28, 28) and data.x_test.shape == (100, 1, 28, 28)
    assert torch.equal(torch.bincount(data.y_train), torch.full((20,), 15))
    arrays = tables.omniglot()
    row = np.flatnonzero(
        (np.array(arrays.alphabet_names)[arrays.alphabet] == "Latin") & (arrays.character == 1)
    )[0]
    expected = 1.0 - torch.as_tensor(arrays.images[row, :5], dtype=torch.float32) / 255.0
    assert torch.equal(data.x_test[:5, 0], expected)  # drawers 1-5 are the test images
    assert data.loss == "cross_entropy" and data.metric == "error" and data.n_outputs == 20


def test_augmentation_is_seeded_and_adds_copies():
    plain = metaenvs.make("Vision/OmniglotAlphabets-v0").tasks("train")[0].load()
    a = metaenvs.make("Vision/OmniglotAlphabets-v0", augment=2).tasks("train")[0].load()
    b = metaenvs.make("Vision/OmniglotAlphabets-v0", augment=2).tasks("train")[0].load()
    assert a.x_train.shape[0] == 3 * plain.x_train.shape[0] and torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_train[:300], plain.x_train) and not torch.equal(a.x_train[300:600], plain.x_train)
    with pytest.raises(InvalidArgumentError, match="augment"):
        metaenvs.make("Vision/OmniglotAlphabets-v0", augment=-1)
    small = metaenvs.make("Vision/OmniglotAlphabets-v0", ways=5, image_size=32).tasks("test")[0].load()
    assert small.x_train.shape == (75, 1, 32, 32) and small.n_outputs == 5
    with pytest.raises(InvalidArgumentError, match="use ways <= 20"):
        metaenvs.make("Vision/OmniglotAlphabets-v0", ways=25)
    with pytest.raises(InvalidArgumentError, match="exceeds the 30"):
        metaenvs.make("Vision/OmniglotAlphabets-v0", num_alphabets=31)


def test_no_test_alphabet_reaches_meta_training():
    dist = metaenvs.make("Vision/OmniglotAlphabets-v0")
    agent = SupervisedAgent.for_distribution(dist, seed=0, model_spec={"type": "conv4", "channels": 4})
    learner = Recorder(meta_lr=0.5)
    meta_train(agent, dist, learner, meta_steps=3, meta_batch_size=20, inner_steps=1, seed=0, progress=False)
    seen = {t.params["alphabet"] for t in learner.seen}
    assert len(learner.seen) == 60 and seen <= set(og.TRAIN_ALPHABETS)
    assert not seen & set(og.TEST_ALPHABETS + og.VAL_ALPHABETS)


# ----- Omniglot episodes ----------------------------------------------------------------
@pytest.mark.real_data("omniglot")  # the real counts: 659 evaluation and 964 background characters
def test_episode_classes_split_by_alphabet_with_rotations():
    dist = metaenvs.make("Vision/Omniglot5way1shot-v0")
    arrays = tables.omniglot()
    names = np.array(arrays.alphabet_names)[arrays.alphabet]
    pools = {s: dist.class_pool(s) for s in ("train", "val", "test")}
    assert len(pools["test"]) == 659 * 4 and set(arrays.subset[pools["test"][:, 0]]) == {1}
    assert set(names[pools["val"][:, 0]]) == set(og.EPISODE_VAL_ALPHABETS)
    assert len(pools["train"]) + len(pools["val"]) == 964 * 4
    assert not set(pools["train"][:, 0]) & set(pools["test"][:, 0])
    task = dist.tasks("test")[0]
    data = task.load()
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (75, 1, 28, 28)
    (row, turns), drawers = task.params["classes"][0], task.params["drawers"][0]
    pic = np.rot90(arrays.images[row, drawers[0]], k=turns)
    assert torch.equal(data.x_train[0, 0], 1.0 - torch.as_tensor(pic.copy(), dtype=torch.float32) / 255.0)
    with pytest.raises(InvalidArgumentError, match="exceeds the 20 drawings"):
        metaenvs.make("Vision/Omniglot5way1shot-v0", shots=10, query=15)


@pytest.mark.parametrize(
    ("dist_id", "old", "new"),
    [
        ("Vision/Omniglot5way1shot-v0", "n_way", "ways"),
        ("Vision/Omniglot5way1shot-v0", "k_shot", "shots"),
        ("Vision/Omniglot5way1shot-v0", "n_query", "query"),
        ("Synthetic/CosMixture50shot-v0", "val", "query"),
        ("Synthetic/Alpine50shot-v0", "val", "query"),
        ("Synthetic/Sinusoid-v0", "test_points", "query"),
        ("Synthetic/Sinusoid-v0", "n_test", "test_tasks"),
        ("Control/CartPolePhysics-v0", "n_val", "val_tasks"),
        ("Ratings/Jester1_10shot15val-v0", "val", "query"),
        ("Ratings/Jester1_10shot15val-v0", "test_users", "test_tasks"),
    ],
)
def test_old_family_keywords_are_refused_naming_the_new_ones(dist_id, old, new):
    with pytest.raises(InvalidArgumentError, match=f"'{old}' is now '{new}'.*{new}="):
        metaenvs.make(dist_id, **{old: 5})


def test_conv4_shapes_and_errors():
    assert Conv4((1, 28, 28), 20)(torch.zeros(2, 1, 28, 28)).shape == (2, 20)
    assert Conv4((3, 32, 32), 100)(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    assert sum(p.numel() for p in Conv4((1, 28, 28), 5).parameters()) == 112261  # 4 blocks + 5-way head
    assert not list(Conv4((1, 28, 28), 5).buffers())
    with pytest.raises(InvalidArgumentError, match="channels, height, width"):
        Conv4((784,), 10)


# ----- MultiCV and image folders ----------------------------------------------------------
def test_multicv_leaves_one_data_set_out():
    dist = metaenvs.make("Vision/MultiCV-v0")
    assert [t.params["dataset"] for t in dist.tasks("test")] == ["cifar10"]
    assert "cifar10" not in [t.params["dataset"] for t in dist.tasks("train")]
    data = dist.tasks("train")[0].load()
    assert data.input_shape == (3, 32, 32) and data.n_outputs == 100 and data.x_train.shape[1:] == (3, 32, 32)
    with pytest.raises(InvalidArgumentError, match="held_out"):
        metaenvs.make("Vision/MultiCV-v0", held_out="imagenet")
    small = metaenvs.make("Vision/MultiCV-v0", datasets=["mnist", "digits"], held_out="digits", channels=1)
    check_task_distribution(small)


def write_image_tree(root, tasks=("a", "b", "c"), classes=("x", "y", "z"), per_class=8):
    from PIL import Image

    rng = np.random.default_rng(0)
    for t in tasks:
        for c in classes:
            (root / t / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
                    root / t / c / f"{i}.png"
                )


def test_image_folder_registration(tmp_path, scratch_registry):
    write_image_tree(tmp_path / "imgs")
    metaenvs.register(
        "Mine/Folders-v0",
        "metaenvs.vision.datasets_as_tasks:ImageFolderTasks",
        kwargs={"root": str(tmp_path / "imgs"), "test_tasks": ["c"], "image_size": 16},
    )
    dist = metaenvs.make("Mine/Folders-v0")
    check_task_distribution(dist)
    assert [t.params["folder"] for t in dist.tasks("test")] == ["c"]
    data = dist.tasks("train")[0].load()
    assert data.x_train.shape == (9, 1, 16, 16) and data.x_test.shape == (15, 1, 16, 16)
    with pytest.raises(InvalidArgumentError, match="not folders"):
        metaenvs.make("Mine/Folders-v0", test_tasks=["nope"])
    with pytest.raises(DataError, match=r"more than 8 images each; found \{.x.: 8"):
        metaenvs.make("Mine/Folders-v0", test_per_class=8)
    with pytest.raises(DataError, match="does not exist"):
        metaenvs.make("Mine/Folders-v0", root=str(tmp_path / "missing"))


# ----- ratings ----------------------------------------------------------------------------
@pytest.mark.parametrize("id", ["Ratings/Jester1_10shot15val-v0", "Ratings/MovieLens100K_20shot30val-v0"])
def test_ratings_preprocessing_follows_the_protocol(id):
    dist = metaenvs.make(id)
    name = {"Jester1": "jester1", "MovieLens100K": "movielens100k"}[id.split("/")[1].split("_")[0]]
    table = tables.ratings(name)
    items, counts = np.unique(table.item, return_counts=True)
    top = set(items[np.lexsort((items, -counts))[:100]].tolist())
    assert set(dist._prepare()["items"]) == top
    assert dist.splits["test"] == 100
    test_users = {t.params["user"] for t in dist.tasks("test")}
    train_users = {t.params["user"] for t in dist.tasks("train")}
    assert not test_users & train_users
    keep = np.isin(table.item, list(top))
    train_mask = keep & np.isin(table.user, list(train_users))
    mean, std = dist.y_moments()
    assert mean == pytest.approx(table.rating[train_mask].mean(), rel=1e-12)
    assert std == pytest.approx(table.rating[train_mask].std(), rel=1e-12)
    data = dist.tasks("test")[0].load()
    assert data.x_train.shape == (dist.shots, 100) and data.x_test.shape == (dist.query, 100)
    assert torch.equal(data.x_train.sum(dim=1), torch.ones(dist.shots))


def test_nrmse_matches_a_hand_computation():
    dist = metaenvs.make("Ratings/MovieLens100K_10shot15val-v0")
    task = dist.tasks("test")[3]
    data = task.load()
    table = tables.ratings("movielens100k")
    mine = table.user == task.params["user"]
    rated = dict(zip(table.item[mine].tolist(), table.rating[mine].tolist(), strict=True))
    items = [dist._prepare()["items"][i] for i in data.x_test.argmax(dim=1).tolist()]
    raw = np.array([rated[i] for i in items], dtype=np.float64)
    mean, std = dist.y_moments()
    guess_rating = 3.5  # predict 3.5 stars for every item
    pred = torch.full((len(raw), 1), (guess_rating - mean) / std, dtype=torch.float64)
    nrmse, higher_is_better = get_metric("nrmse")
    hand = np.sqrt(np.mean((guess_rating - raw) ** 2)) / std  # RMSE in stars over the scaler's std
    assert not higher_is_better
    assert float(nrmse(pred, data.y_test.double())) == pytest.approx(hand, rel=1e-6)


def test_no_test_user_reaches_meta_training():
    dist = metaenvs.make("Ratings/MovieLens100K_10shot15val-v0")
    agent = SupervisedAgent.for_distribution(dist, seed=0)
    learner = Recorder(meta_lr=0.5)
    meta_train(agent, dist, learner, meta_steps=20, meta_batch_size=50, inner_steps=1, seed=0, progress=False)
    test_users = {t.params["user"] for t in dist.tasks("test") + dist.tasks("val")}
    assert learner.seen and all(t.split == "train" for t in learner.seen)
    assert not {t.params["user"] for t in learner.seen} & test_users


def test_ratings_csv_registration(tmp_path, scratch_registry):
    rng = np.random.default_rng(0)
    lines = ["user,item,rating"] + [
        f"u{u},item{i},{rng.integers(1, 6)}" for u in range(200) for i in rng.choice(120, 40, replace=False)
    ]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    metaenvs.register(
        "Mine/Ratings-v0", "metaenvs.ratings:RatingsCSV", kwargs={"path": str(tmp_path / "r.csv")}
    )
    dist = metaenvs.make("Mine/Ratings-v0")
    check_task_distribution(dist)
    assert dist.tasks("test")[0].params["user"].startswith("u")
    too_many = metaenvs.make("Mine/Ratings-v0", shots=30, query=30)
    with pytest.raises(DataError, match=r"only .* users have 60\+ ratings"):
        too_many.tasks("test")
    with pytest.raises(InvalidArgumentError, match="does not accept 'foo'"):
        metaenvs.make("Mine/Ratings-v0", foo=1)


def test_multicv_local_leaves_each_data_set_on_hand_out():
    pool = {"mnist", "cifar10", "digits"}
    for held in sorted(pool):
        dist = metaenvs.make(f"Vision/MultiCVLocal_{held}-v0")
        assert [t.params["dataset"] for t in dist.tasks("test")] == [held]
        assert {t.params["dataset"] for t in dist.tasks("train")} == pool - {held}
        assert dist.protocol.agent["model"] == {"type": "conv4", "channels": 32}
    assert metaenvs.make("Vision/MultiCV-v0").protocol.agent["model"]["channels"] == 64
    with pytest.raises(InvalidArgumentError, match="filters"):
        metaenvs.make("Vision/MultiCV-v0", filters=0)
