"""Omniglot task distributions: alphabets as tasks (Leap) and N-way K-shot episodes.

**Alphabets** (``Vision/OmniglotAlphabets-v0``), the protocol of Leap (Flennerhag et al.,
ICLR 2019), made reproducible. Each alphabet is a 20-way task over its first 20 characters
(alphabets with fewer than 20 are dropped: Blackfoot, Inuktitut, Ojibwe and Tagalog,
which leaves 46). Per character, drawers 6-20 are the 15 training images and drawers 1-5
the 5 test images (Leap's code holds out the first 5 files it lists). Leap's code shuffles
the listed alphabets with Python's global ``random`` and takes the test set right after the
pretraining alphabets, so its test set changes with the number of pretraining alphabets
and with the file system's listing order. Here the split is fixed and listed below: it
was derived once as ``numpy.random.default_rng(2019).permutation(sorted(eligible))``
(first 10 = test, next 6 = val, the remaining 30 = train, in that order), and the test
checks both the derivation and the hash. ``num_alphabets=n`` trains on the first ``n``
train alphabets, so smaller pools are nested in larger ones and the test set never moves.

**Episodes** (``Vision/OmniglotEpisodes*``): N-way K-shot classification with classes
split *by alphabet*, Lake et al.'s background / evaluation split: the 20 evaluation
alphabets are the test classes; 5 fixed background alphabets (listed below) are the
validation classes; the other 25 background alphabets are the training classes. Every
character at each of the four rotations by 90 degrees is its own class (Santoro et al.
2016, as MAML and Reptile do), so test episodes never share a character with training.
Note: this differs from the "Vinyals split" (1,200 training characters drawn across
alphabets) that MAML and Reptile report, so numbers are not directly comparable.

**Vinyals episodes** (``Vision/OmniglotVinyals*``, ``class_split="vinyals"``): the split of
Vinyals et al. (2016) that MAML, Reptile, Meta-SGD and ANIL report on, from the published
lists (``metaenvs.data.splits``): 1,200 training characters and 423 test characters, each
at 4 rotations as listed (4,800 and 1,692 classes). ``class_split="vinyals_val"`` trains on
the lists' 1,028 ``train`` characters and validates on their 172 ``val`` ones (the
Prototypical Networks protocol for choosing settings); its test classes are the same.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.data.splits import VINYALS_SOURCE, vinyals_omniglot
from metaenvs.data.tables import omniglot
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed, torch_generator
from metaenvs.validation import positive_int
from metaenvs.vision.images import random_affine, resize, to_tensor

TEST_ALPHABETS = ("Hebrew", "Ge_ez", "Avesta", "Braille", "Latin", "Glagolitic", "Oriya", "Keble",
                  "Burmese_(Myanmar)", "Sylheti")  # fmt: skip
VAL_ALPHABETS = ("Mongolian", "Kannada", "Grantha", "Atlantean", "Early_Aramaic", "Malayalam")
TRAIN_ALPHABETS = (
    "Alphabet_of_the_Magi", "Japanese_(katakana)", "Tifinagh", "Futurama", "Angelic",
    "Old_Church_Slavonic_(Cyrillic)", "Atemayar_Qelisayer", "Greek", "Manipuri", "Balinese", "Tengwar",
    "Aurek-Besh", "Cyrillic", "Syriac_(Serto)", "Gujarati", "Sanskrit", "Malay_(Jawi_-_Arabic)",
    "Syriac_(Estrangelo)", "Anglo-Saxon_Futhorc", "ULOG", "Arcadian", "Tibetan", "Asomtavruli_(Georgian)",
    "Bengali", "N_Ko", "Japanese_(hiragana)", "Armenian", "Mkhedruli_(Georgian)", "Korean", "Gurmukhi",
)  # fmt: skip
SPLIT_DERIVATION_SEED = 2019
EPISODE_VAL_ALPHABETS = ("Tifinagh", "Burmese_(Myanmar)", "Alphabet_of_the_Magi",
                         "Inuktitut_(Canadian_Aboriginal_Syllabics)", "Korean")  # fmt: skip
CONV4: dict[str, Any] = {"type": "conv4", "channels": 64}
CLASS_SPLITS = {
    "lake": "classes split by alphabet: Lake et al.'s 20 evaluation alphabets held out, 5 listed background "
    "alphabets for val, the other 25 to train; rotations as classes",
    "vinyals": "the Vinyals et al. (2016) split as MAML and Reptile use it: 1,200 training and 423 test "
    f"characters x 4 rotations, from the published lists ({VINYALS_SOURCE})",
    "vinyals_val": "the Vinyals et al. (2016) lists' train (1,028 characters) / val (172) / test (423) x 4 "
    f"rotations ({VINYALS_SOURCE})",
}


def vinyals_pool(data: Any, split: str) -> np.ndarray:
    """``(n, 2)`` array of ``(character row, quarter turns)`` for a Vinyals list (``split``)."""
    keys = zip(data.alphabet, data.character, strict=True)
    row_of = {(data.alphabet_names[a], int(c)): i for i, (a, c) in enumerate(keys)}
    listed = vinyals_omniglot(split)
    missing = sorted({(a, c) for a, c, _ in listed if (a, c) not in row_of})
    if missing:
        raise DataError(
            f"The Omniglot data in use lacks {len(missing)} characters of the Vinyals {split} list (first: "
            f"{missing[0][0]}/character{missing[0][1]:02d}); use the full official Omniglot "
            "(metaenvs data fetch omniglot)."
        )
    return np.array([(row_of[(a, c)], turns) for a, c, turns in listed], dtype=np.int64)


def derive_alphabet_split(names_and_counts: dict[str, int], min_classes: int = 20) -> dict[str, list[str]]:
    """Re-derive the frozen alphabet split from the data (the tests compare it to the lists)."""
    eligible = sorted(n for n, c in names_and_counts.items() if c >= min_classes)
    order = [eligible[i] for i in np.random.default_rng(SPLIT_DERIVATION_SEED).permutation(len(eligible))]
    return {"test": order[:10], "val": order[10:16], "train": order[16:]}


class OmniglotAlphabets(SupervisedTaskDistribution):
    """Leap's Omniglot protocol: each alphabet is a 20-way classification task.

    Args:
        num_alphabets: How many training alphabets (1-30) the train split holds.
        ways: Classes per task: the first ``ways`` characters of each alphabet (at most 20).
        image_size: Side of the images (28 is native; others are resized, antialiased bilinear).
        augment: Random affine copies added per training image (Leap's ranges), drawn from a
            generator seeded by the task; 0 turns augmentation off.
        data_dir: Data folder (default: ``METAENVS_DATA`` or the user cache).
        seed: Unused for the split (it is fixed); kept for the common signature.
    """

    seed_decides_splits = False
    default_model: ClassVar = CONV4
    meta_defaults: ClassVar = {"cts": {"meta_lr": 0.01}}
    """CTS's default meta step (0.1, applied after every inner step) degrades these tasks: held-out error
    0.446 against scratch's 0.156 after 10 meta steps of 3 alphabets (5 held-out alphabets); 0.03 gives
    0.216, 0.01 gives 0.158."""
    n_classes: ClassVar[int] = 20
    n_test_drawers: ClassVar[int] = 5

    def __init__(
        self,
        num_alphabets: int = 30,
        ways: int = 20,
        image_size: int = 28,
        augment: int = 0,
        data_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.ways = positive_int("ways", ways)
        if self.ways > self.n_classes:
            raise InvalidArgumentError(
                f"ways={ways}: the listed alphabets are those with at least {self.n_classes} characters; "
                f"use ways <= {self.n_classes}."
            )
        self.image_size = positive_int("image_size", image_size)
        self.num_alphabets = positive_int("num_alphabets", num_alphabets)
        if self.num_alphabets > len(TRAIN_ALPHABETS):
            raise InvalidArgumentError(
                f"num_alphabets={num_alphabets} exceeds the {len(TRAIN_ALPHABETS)} training alphabets."
            )
        if not isinstance(augment, int) or augment < 0:
            raise InvalidArgumentError(
                f"augment must be a non-negative int (copies per image), got {augment!r}."
            )
        self.augment = augment
        self.data_dir = data_dir

    @property
    def split_rule(self) -> str:
        """How the alphabets are split (``metaenvs info`` shows it)."""
        return "alphabets as tasks: 10 listed test alphabets, 6 val, the first num_alphabets of 30 train"

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": self.num_alphabets, "val": len(VAL_ALPHABETS), "test": len(TEST_ALPHABETS)}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        name = {"train": TRAIN_ALPHABETS, "val": VAL_ALPHABETS, "test": TEST_ALPHABETS}[split][index]
        return name, {"alphabet": name, "characters": list(range(1, self.ways + 1))}

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        data = omniglot(self.data_dir)
        alphabet = data.alphabet_names.index(task.params["alphabet"])
        rows = [int(np.flatnonzero((data.alphabet == alphabet) & (data.character == c))[0])
                for c in task.params["characters"]]  # fmt: skip
        images = data.images[rows]  # (classes, 20 drawers, 28, 28)
        k = self.n_test_drawers
        x_train = to_tensor(images[:, k:].reshape(-1, 28, 28), invert=True)
        x_test = to_tensor(images[:, :k].reshape(-1, 28, 28), invert=True)
        y_train = torch.arange(len(rows)).repeat_interleave(20 - k)
        y_test = torch.arange(len(rows)).repeat_interleave(k)
        if self.augment:
            gen = torch_generator(derive_seed(0, "augment", task.params["alphabet"]))
            copies = [random_affine(x_train, gen) for _ in range(self.augment)]
            x_train = torch.cat([x_train, *copies])
            y_train = y_train.repeat(self.augment + 1)
        if self.image_size != 28:
            x_train, x_test = (resize(x, self.image_size, 1) for x in (x_train, x_test))
        shape = (1, self.image_size, self.image_size)
        return SupervisedData(x_train, y_train, x_test, y_test, shape, len(rows), "cross_entropy", "error")

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(100, "error", 0.1, batch_size=20, seeds=(0, 1, 2, 3, 4))


class OmniglotEpisodes(SupervisedTaskDistribution):
    """N-way K-shot Omniglot episodes, classes split by alphabet, rotations as classes.

    Args:
        ways: Classes per episode.
        shots: Training images per class.
        query: Query images per class.
        rotations: Count each character at 0/90/180/270 degrees as four classes (the Vinyals lists
            always do).
        class_split: Which classes each split draws from (``CLASS_SPLITS``): ``"lake"`` (by
            alphabet), ``"vinyals"`` or ``"vinyals_val"``.
        eval_episodes: Size of the fixed val and test splits (drawn with the distribution's seed).
        data_dir: Data folder.
        seed: Chooses the fixed val/test episodes.
    """

    default_model: ClassVar = CONV4
    renamed_kwargs: ClassVar = {"n_way": "ways", "k_shot": "shots", "n_query": "query"}
    meta_defaults: ClassVar = {
        "leap": {"meta_optimizer": "adam", "meta_lr": 1e-3},
        "reptile": {"meta_lr": 0.1},
        "cts": {"meta_lr": 0.01},
    }
    """Chosen on the val split (``benchmarks/defaults.py --split val``: 100 meta steps of 5 episodes,
    40 val episodes, 5-way 1-shot), because the algorithms' own meta steps make the initialization worse
    than a random one there: accuracy minus scratch's 0.742 was -0.060 for Leap's SGD 0.1 (-0.096 at
    0.03, -0.042 at 0.01; +0.008 with Adam 1e-3), -0.067 for Reptile's 1.0 annealed (+0.024 at 0.1,
    +0.014 at 0.3) and -0.060 for CTS's 0.1 (+0.011 at 0.01, -0.098 with Adam 1e-3). FOMAML's and
    FOMAML++'s Adam 1e-3 gain 0.19 with their own defaults. ``benchmarks/results/defaults_omniglot5w1s``
    has the test-split figures."""

    def __init__(
        self,
        ways: int = 5,
        shots: int = 1,
        query: int = 15,
        rotations: bool = True,
        eval_episodes: int = 200,
        data_dir: str | None = None,
        class_split: str = "lake",
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if class_split not in CLASS_SPLITS:
            raise InvalidArgumentError(
                f"class_split={class_split!r} is not one of {', '.join(CLASS_SPLITS)}."
            )
        if class_split != "lake" and not rotations:
            raise InvalidArgumentError(
                f"class_split={class_split!r} lists every character at 4 rotations; use rotations=True."
            )
        self.class_split = class_split
        self.ways = positive_int("ways", ways)
        self.shots = positive_int("shots", shots)
        self.query = positive_int("query", query)
        if self.shots + self.query > 20:
            raise InvalidArgumentError(
                f"shots + query = {shots + query} exceeds the 20 drawings of each character; lower one."
            )
        self.rotations = bool(rotations)
        self.eval_episodes = positive_int("eval_episodes", eval_episodes)
        self.data_dir = data_dir
        self._pools: dict[str, np.ndarray] | None = None

    def class_pool(self, split: str) -> np.ndarray:
        """``(n, 2)`` array of ``(character row, quarter turns)`` classes of ``split``."""
        if self._pools is None and self.class_split != "lake":
            data = omniglot(self.data_dir)
            train = "trainval" if self.class_split == "vinyals" else "train"
            self._pools = {"train": vinyals_pool(data, train), "test": vinyals_pool(data, "test")}
            if self.class_split == "vinyals_val":
                self._pools["val"] = vinyals_pool(data, "val")
        if self._pools is None:
            data = omniglot(self.data_dir)
            names = np.array(data.alphabet_names)[data.alphabet]
            val = np.isin(names, EPISODE_VAL_ALPHABETS)
            masks = {"train": (data.subset == 0) & ~val, "val": val, "test": data.subset == 1}
            turns = np.arange(4 if self.rotations else 1)
            self._pools = {
                s: np.array([(c, r) for c in np.flatnonzero(m) for r in turns], dtype=np.int64)
                for s, m in masks.items()
            }
        return self._pools[split]

    @property
    def split_rule(self) -> str:
        """How the classes are split (``metaenvs info`` shows it)."""
        return CLASS_SPLITS[self.class_split]

    def _split_sizes(self) -> dict[str, int | None]:
        if self.class_split == "vinyals":  # MAML's and Reptile's protocol: no val classes
            return {"train": None, "test": self.eval_episodes}
        return {"train": None, "val": self.eval_episodes, "test": self.eval_episodes}

    def _sample_params(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        pool = self.class_pool(split)
        if self.ways > len(pool):
            raise InvalidArgumentError(
                f"ways={self.ways} exceeds the {len(pool)} classes of split {split!r}."
            )
        classes = pool[rng.choice(len(pool), self.ways, replace=False)]
        drawers = [rng.permutation(20)[: self.shots + self.query].tolist() for _ in classes]
        return {"classes": classes.tolist(), "drawers": drawers}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        rng = np.random.default_rng(derive_seed(self.seed, split, index))
        return f"{index:04d}", self._sample_params(rng, split)

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        images = omniglot(self.data_dir).images
        support, query = [], []
        for (row, turns), drawers in zip(task.params["classes"], task.params["drawers"], strict=True):
            pics = np.rot90(images[row, drawers], k=turns, axes=(1, 2))
            support.append(pics[: self.shots])
            query.append(pics[self.shots :])
        x_train = to_tensor(np.concatenate(support), invert=True)
        x_test = to_tensor(np.concatenate(query), invert=True)
        y_train = torch.arange(self.ways).repeat_interleave(self.shots)
        y_test = torch.arange(self.ways).repeat_interleave(self.query)
        return SupervisedData(
            x_train, y_train, x_test, y_test, (1, 28, 28), self.ways, "cross_entropy", "accuracy"
        )

    def default_protocol(self) -> Protocol:
        if self.class_split == "lake":
            return self.inner_loop_protocol(10, "accuracy", 0.4)
        # MAML's Omniglot evaluation (cbfinn/maml main.py): 10 full-batch SGD steps at the inner lr of its
        # training, 0.4 for 5-way and 0.1 for 20-way.
        return self.inner_loop_protocol(10, "accuracy", 0.4 if self.ways <= 5 else 0.1)
