"""Few-shot episodes over a labelled image set whose classes are split by published lists.

``Vision/CIFARFS*`` (Bertinetto et al. 2019: 64 / 16 / 20 CIFAR-100 classes) and ``Vision/FC100*``
(Oreshkin et al. 2018: 60 / 20 / 20 classes, by superclass) draw N-way K-shot episodes from all 600
images of each class (CIFAR-100's training and test images together, as both papers do), at 32x32.
The class lists are data shipped in :mod:`metaenvs.data.splits`, checked against their source's
sha256. The val and test splits are fixed sets of episodes (600 by default) drawn with the
distribution's seed, so they are part of the split hash.

The protocol follows MAML's mini-ImageNet evaluation, the convention these benchmarks are reported
under by initialization-based learners: 10 full-batch SGD steps at 0.01 on the support images, a conv4
with 32 filters, accuracy on 15 query images per class.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.data import splits
from metaenvs.data.vision import vision
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int
from metaenvs.vision.images import to_tensor


class ClassSplitEpisodes(SupervisedTaskDistribution):
    """N-way K-shot episodes whose train / val / test classes come from published lists.

    Subclasses name the image set (:attr:`dataset`), the lists (:meth:`class_lists`) and the rule.

    Args:
        ways: Classes per episode.
        shots: Support images per class.
        query: Query images per class.
        eval_episodes: Size of the fixed val and test splits.
        data_dir: Data folder.
        seed: Chooses the fixed val / test episodes.
    """

    dataset: ClassVar[str] = ""
    images_per_class: ClassVar[int] = 600
    """Images of each class in the real set (the most ``shots + query`` can ask for)."""
    default_model: ClassVar = {"type": "conv4", "channels": 32}
    renamed_kwargs: ClassVar = {"n_way": "ways", "k_shot": "shots", "n_query": "query"}

    def __init__(
        self,
        ways: int = 5,
        shots: int = 1,
        query: int = 15,
        eval_episodes: int = 600,
        data_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.ways = positive_int("ways", ways)
        self.shots = positive_int("shots", shots)
        self.query = positive_int("query", query)
        if shots + query > self.images_per_class:
            raise InvalidArgumentError(
                f"shots + query = {shots + query} exceeds the {self.images_per_class} images of each class."
            )
        smallest = min(len(v) for v in self.class_lists().values())
        if self.ways > smallest:
            raise InvalidArgumentError(f"ways={ways} exceeds the {smallest} classes of the smallest split.")
        self.eval_episodes = positive_int("eval_episodes", eval_episodes)
        self.data_dir = data_dir
        self._members: dict[str, list[np.ndarray]] | None = None

    @abstractmethod
    def class_lists(self) -> dict[str, tuple[str, ...]]:
        """The class names of each split."""

    def _images_of_classes(self) -> dict[str, list[np.ndarray]]:
        """Per split, per listed class: the indices of its images in the data set (sorted)."""
        if self._members is None:
            arrays = vision(self.dataset, self.data_dir)
            index = {name: i for i, name in enumerate(arrays.class_names)}
            members = {}
            for split, names in self.class_lists().items():
                missing = [n for n in names if n not in index]
                if missing:
                    raise DataError(
                        f"The {self.dataset} files in use lack the classes {missing[:3]} of the {split} list "
                        f"of {type(self).__name__}; use the official {self.dataset} files "
                        f"(metaenvs data fetch {self.dataset})."
                    )
                members[split] = [np.flatnonzero(arrays.labels == index[n]) for n in names]
            fewest = min(len(m) for ms in members.values() for m in ms)
            if fewest < self.shots + self.query:
                raise DataError(
                    f"A listed class of {self.dataset} has {fewest} images, below shots + query = "
                    f"{self.shots + self.query}; the files are incomplete: "
                    f"run metaenvs data fetch {self.dataset}."
                )
            self._members = members
        return self._members

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": None, "val": self.eval_episodes, "test": self.eval_episodes}

    def _sample_params(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        names, members = self.class_lists()[split], self._images_of_classes()[split]
        chosen = sorted(rng.choice(len(names), self.ways, replace=False).tolist())
        n = self.shots + self.query  # positions in each class's image list (600 per class in the real set)
        picks = [rng.permutation(len(members[c]))[:n].tolist() for c in chosen]
        return {"classes": [names[c] for c in chosen], "images": picks}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        rng = np.random.default_rng(derive_seed(self.seed, split, index))
        return f"{index:04d}", self._sample_params(rng, split)

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        members = self._images_of_classes()[task.split]
        names = self.class_lists()[task.split]
        images = vision(self.dataset, self.data_dir).images
        support, query = [], []
        for name, picks in zip(task.params["classes"], task.params["images"], strict=True):
            rows = members[names.index(name)][np.asarray(picks)]
            support.append(images[rows[: self.shots]])
            query.append(images[rows[self.shots :]])
        x_train, x_test = to_tensor(np.concatenate(support)), to_tensor(np.concatenate(query))
        y_train = torch.arange(self.ways).repeat_interleave(self.shots)
        y_test = torch.arange(self.ways).repeat_interleave(self.query)
        shape = tuple(x_train.shape[1:])
        return SupervisedData(x_train, y_train, x_test, y_test, shape, self.ways, "cross_entropy", "accuracy")

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(10, "accuracy", 0.01)


class CIFARFS(ClassSplitEpisodes):
    """CIFAR-FS episodes (Bertinetto et al., ICLR 2019): 64 / 16 / 20 CIFAR-100 classes."""

    dataset: ClassVar[str] = "cifar100"

    def class_lists(self) -> dict[str, tuple[str, ...]]:
        return {s: splits.cifar_fs(s) for s in splits.SPLITS}

    @property
    def split_rule(self) -> str:
        return f"CIFAR-FS (Bertinetto et al. 2019): 64 / 16 / 20 CIFAR-100 classes ({splits.TORCHMETA})"


class FC100(ClassSplitEpisodes):
    """FC100 episodes (Oreshkin et al., NeurIPS 2018): CIFAR-100 split by superclass, 12 / 4 / 4."""

    dataset: ClassVar[str] = "cifar100"

    def class_lists(self) -> dict[str, tuple[str, ...]]:
        return {s: splits.fc100(s) for s in splits.SPLITS}

    @property
    def split_rule(self) -> str:
        return (
            "FC100 (Oreshkin et al. 2018): CIFAR-100 by superclass, 12 / 4 / 4 superclasses = 60 / 20 / 20 "
            f"classes ({splits.TORCHMETA}; ElementAI/TADAM)"
        )
