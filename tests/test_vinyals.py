"""The Vinyals et al. (2016) Omniglot split: the shipped lists, counts, disjointness, rotations, hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import metaenvs
from metaenvs.data import splits
from metaenvs.errors import DataError, InvalidArgumentError

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "MANIFEST.md"


def characters(split):
    return {(a, c) for a, c, _ in splits.vinyals_omniglot(split)}


def test_the_lists_count_disjoint_characters_at_four_rotations():
    counts = {s: len(characters(s)) for s in ("train", "val", "trainval", "test")}
    assert counts == {"train": 1028, "val": 172, "trainval": 1200, "test": 423}
    assert characters("trainval") == characters("train") | characters("val")
    assert not characters("train") & characters("val")
    assert not characters("trainval") & characters("test")
    for split in ("trainval", "test"):  # the rotation rule: every character at 0, 90, 180, 270 degrees
        rows = splits.vinyals_omniglot(split)
        assert len(rows) == 4 * len(characters(split)) == len(set(rows))
        assert {t for *_, t in rows} == {0, 1, 2, 3}


def test_the_lists_are_the_published_files():
    assert "jakesnell/prototypical-networks" in splits.VINYALS_SOURCE
    if MANIFEST.is_file():  # the shared data folder's manifest names the published checksums
        text = MANIFEST.read_text()
        assert splits.VINYALS_TRAINVAL_SHA256 in text and splits.VINYALS_SHA256["test"] in text
    folder = Path(splits.__file__).parent
    joined = b"".join((folder / f"omniglot_vinyals_{s}.txt").read_bytes() for s in ("train", "val"))
    assert hashlib.sha256(joined).hexdigest() == splits.VINYALS_TRAINVAL_SHA256


def test_an_edited_list_is_refused(monkeypatch):
    monkeypatch.setitem(splits.VINYALS_SHA256, "test", "0" * 64)
    splits.vinyals_omniglot.cache_clear()
    try:
        with pytest.raises(DataError, match="does not match its source's sha256"):
            splits.vinyals_omniglot("test")
    finally:
        splits.vinyals_omniglot.cache_clear()
    with pytest.raises(DataError, match="Unknown Vinyals split"):
        splits.vinyals_omniglot("holdout")


def test_bad_class_split_arguments_are_refused():
    with pytest.raises(InvalidArgumentError, match="class_split='vinyal'"):
        metaenvs.make("Vision/OmniglotVinyals5way1shot-v0", class_split="vinyal")
    with pytest.raises(InvalidArgumentError, match="rotations=True"):
        metaenvs.make("Vision/OmniglotVinyals5way1shot-v0", rotations=False)


@pytest.mark.real_data("omniglot")
def test_episodes_draw_their_classes_from_the_lists():
    dist = metaenvs.make("Vision/OmniglotVinyals5way1shot-v0")
    assert dist.splits == {"train": None, "test": 600} and "Vinyals" in dist.split_rule
    assert len(dist.class_pool("train")) == 4800 and len(dist.class_pool("test")) == 1692
    train_rows = set(dist.class_pool("train")[:, 0].tolist())
    assert not train_rows & set(dist.class_pool("test")[:, 0].tolist())
    assert dist.split_hash() == metaenvs.make("Vision/OmniglotVinyals5way1shot-v0").split_hash()
    assert dist.split_hash() != metaenvs.make("Vision/OmniglotVinyals5way5shot-v0").split_hash()
    task = dist.tasks("test")[0]
    data = task.load()
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (75, 1, 28, 28)
    images = metaenvs.data.tables.omniglot().images
    (row, turns), drawers = task.params["classes"][0], task.params["drawers"][0]
    from metaenvs.vision.images import to_tensor

    expected = to_tensor(np.rot90(images[row, drawers[:1]], k=turns, axes=(1, 2)), invert=True)
    assert np.array_equal(data.x_train[:1].numpy(), expected.numpy())  # rotations as listed
    selection = metaenvs.make("Vision/OmniglotVinyals5way1shot-v0", class_split="vinyals_val")
    assert set(selection.splits) == {"train", "val", "test"} and len(selection.class_pool("val")) == 688
    assert dist.protocol.agent["lr"] == 0.4 and dist.protocol.budget == 10
    assert metaenvs.make("Vision/OmniglotVinyals20way1shot-v0").protocol.agent["lr"] == 0.1


@pytest.mark.real_data("omniglot")
def test_the_held_out_episodes_are_pinned():
    """The split hash covers the 600 test episodes; a change to them (lists, seed, sampling) changes it."""
    got = {f"{w}w{k}s": metaenvs.make(f"Vision/OmniglotVinyals{w}way{k}shot-v0").split_hash()[:16]
           for w in (5, 20) for k in (1, 5)}  # fmt: skip
    assert got == PINNED


PINNED = {
    "5w1s": "0edd6cc73a35e5ee",
    "5w5s": "dcb40d86372c7792",
    "20w1s": "05617d90b7145ce5",
    "20w5s": "fb5e3ffc0861dd29",
}
