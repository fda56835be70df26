"""Data set as task: ``Vision/MultiCV`` (Leap's Multi-CV setting) and folders of images.

**MultiCV**: every data set is one classification task; one is held out (leave one out)
and the others are the meta-train tasks. Images are resized (antialiased bilinear) to
``image_size`` and grey images repeated to ``channels``, so one model serves them all; the
head has as many outputs as the largest data set has classes. Each task trains on
``train_size`` images drawn once (seeded by the data set name) from the official training
set and is scored on ``test_size`` images of the official test set. The pool here is the
data sets we have loaders for; Leap's paper used its own pool (see its Section 4.2).

**ImageFolderTasks**: your own images, one top folder per task and one sub-folder per class::

    root/
      task_a/cat/001.png  task_a/dog/002.jpg ...
      task_b/...

Register it with ``metaenvs.register("Mine/Pets-v0", "metaenvs.vision.datasets_as_tasks:ImageFolderTasks",
kwargs={"root": "/data/pets", "test_tasks": ["task_b"]})``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task, choose_disjoint
from metaenvs.data.vision import VISION_SETS, vision
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int
from metaenvs.vision.images import resize, to_tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
MULTICV_SETS = ("mnist", "fashion_mnist", "kmnist", "svhn", "cifar10", "cifar100")


class MultiCV(SupervisedTaskDistribution):
    """Data sets as tasks, one held out.

    Args:
        datasets: Names from ``metaenvs.data.vision.VISION_SETS``.
        held_out: The test task (must be in ``datasets``).
        image_size: Side of the common image size.
        channels: Channels of the common image format (3 = RGB, 1 = grey).
        train_size: Training images per task (``None``: the whole official training set).
        test_size: Test images per task (``None``: the whole official test set).
        data_dir: Data folder.
        filters: Filters of the protocol's conv4 (64 as in Leap; fewer for a CPU-sized variant).
        seed: Unused for the split (leave-one-out is fixed).
    """

    seed_decides_splits = False
    held_out_tasks_are_a_sample = False  # a fixed, listed set
    default_model: ClassVar = {"type": "conv4", "channels": 64}

    def __init__(
        self,
        datasets: Sequence[str] = MULTICV_SETS,
        held_out: str = "cifar10",
        image_size: int = 32,
        channels: int = 3,
        train_size: int | None = 1000,
        test_size: int | None = 500,
        data_dir: str | None = None,
        filters: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.default_model = {"type": "conv4", "channels": positive_int("filters", filters)}
        self.datasets = tuple(datasets)
        unknown = [d for d in self.datasets if d not in VISION_SETS]
        if unknown or len(set(self.datasets)) != len(self.datasets) or len(self.datasets) < 2:
            raise InvalidArgumentError(
                f"datasets must be 2+ distinct names from {', '.join(VISION_SETS)}; got {list(datasets)}."
            )
        if held_out not in self.datasets:
            raise InvalidArgumentError(f"held_out={held_out!r} is not one of datasets {list(self.datasets)}.")
        self.held_out = held_out
        self.image_size = positive_int("image_size", image_size)
        if channels not in (1, 3):
            raise InvalidArgumentError(f"channels must be 1 or 3, got {channels!r}.")
        self.channels = channels
        self.train_size = None if train_size is None else positive_int("train_size", train_size)
        self.test_size = None if test_size is None else positive_int("test_size", test_size)
        self.data_dir = data_dir

    @property
    def split_rule(self) -> str:
        """Leave one out (``metaenvs info`` shows it)."""
        others = len(self.datasets) - 1
        return f"leave one data set out: {self.held_out} is the test task, the {others} others train"

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": len(self.datasets) - 1, "test": 1}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        names = [self.held_out] if split == "test" else [d for d in self.datasets if d != self.held_out]
        return names[index], {"dataset": names[index]}

    def _n_outputs(self) -> int:
        return max(len(vision(d, self.data_dir).class_names) for d in self.datasets)

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        name = task.params["dataset"]
        arrays = vision(name, self.data_dir)
        rng = np.random.default_rng(derive_seed(0, "multicv", name))
        train_pool = np.flatnonzero(~arrays.is_test)
        test_pool = np.flatnonzero(arrays.is_test)
        train_pool = train_pool[rng.permutation(len(train_pool))]
        if len(test_pool) == 0:  # no official test set (digits): hold out the tail of the shuffle
            cut = len(train_pool) - (self.test_size or len(train_pool) // 5)
            train_pool, test_pool = train_pool[:cut], train_pool[cut:]
        else:
            test_pool = test_pool[rng.permutation(len(test_pool))]
        train_idx = np.sort(train_pool[: self.train_size])
        test_idx = np.sort(test_pool[: self.test_size])

        def images(idx: np.ndarray) -> torch.Tensor:
            return resize(to_tensor(arrays.images[idx]), self.image_size, self.channels)

        shape = (self.channels, self.image_size, self.image_size)
        y_train, y_test = (torch.as_tensor(arrays.labels[i]) for i in (train_idx, test_idx))
        return SupervisedData(
            images(train_idx),
            y_train,
            images(test_idx),
            y_test,
            shape,
            self._n_outputs(),
            "cross_entropy",
            "error",
        )

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(500, "error", 0.1, batch_size=32)


class ImageFolderTasks(SupervisedTaskDistribution):
    """Your own images as tasks: ``root/<task>/<class>/<image>``.

    Args:
        root: The folder of task folders.
        test_tasks: The held-out tasks: their folder names, or how many the seed chooses.
        test_per_class: Images per class kept for scoring (the rest train), chosen by the seed.
        image_size: Side images are resized to.
        channels: 1 (grey) or 3 (RGB).
        seed: Chooses the held-out tasks (if not listed) and the test images.
    """

    default_model: ClassVar = {"type": "conv4", "channels": 64}
    renamed_kwargs: ClassVar = {"n_test": "test_tasks"}

    def __init__(
        self,
        root: str,
        test_tasks: Sequence[str] | int = 1,
        test_per_class: int = 5,
        image_size: int = 28,
        channels: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"Image folder {self.root} does not exist; it should hold one folder per task.")
        self.layout = {
            t.name: {c.name: sorted(p.name for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                     for c in sorted(t.iterdir()) if c.is_dir()}
            for t in sorted(self.root.iterdir()) if t.is_dir()
        }  # fmt: skip
        self.test_per_class = positive_int("test_per_class", test_per_class)
        for task, classes in self.layout.items():
            short = {c: len(f) for c, f in classes.items() if len(f) <= self.test_per_class}
            if len(classes) < 2 or short:
                raise DataError(
                    f"Task folder {self.root / task} needs 2+ class folders with more than "
                    f"{self.test_per_class} images each; found { {c: len(f) for c, f in classes.items()} }."
                )
        names = sorted(self.layout)
        if isinstance(test_tasks, int) and not isinstance(test_tasks, bool):
            rng = np.random.default_rng(derive_seed(seed, "image-folder-test"))
            test = choose_disjoint(rng, names, [positive_int("test_tasks", test_tasks)])[0]
        else:
            test = list(test_tasks)
            missing = [t for t in test if t not in self.layout]
            if missing:
                raise InvalidArgumentError(
                    f"test_tasks {missing} are not folders of {self.root}; have {names}."
                )
        self.test_tasks = sorted(test)
        self.seed_decides_splits = test_tasks is None  # a listed held-out set does not move with the seed
        self.train_tasks = [n for n in names if n not in test]
        if not self.train_tasks:
            raise InvalidArgumentError(f"Every task of {self.root} is held out; leave some to train on.")
        self.image_size = positive_int("image_size", image_size)
        if channels not in (1, 3):
            raise InvalidArgumentError(f"channels must be 1 or 3, got {channels!r}.")
        self.channels = channels
        self.n_outputs = max(len(c) for c in self.layout.values())

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": len(self.train_tasks), "test": len(self.test_tasks)}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        name = (self.train_tasks if split == "train" else self.test_tasks)[index]
        # the seed that picks each class's test images is a param: a task's record decides its data
        return name, {"folder": name, "classes": sorted(self.layout[name]), "draw_seed": self.seed}

    def _read(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("L" if self.channels == 1 else "RGB"), dtype=np.uint8)

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        parts: dict[str, list[torch.Tensor]] = {"xtr": [], "ytr": [], "xte": [], "yte": []}
        for label, cls in enumerate(task.params["classes"]):
            files = self.layout[task.params["folder"]][cls]
            rng = np.random.default_rng(
                derive_seed(int(task.params["draw_seed"]), task.params["folder"], cls)
            )
            order = rng.permutation(len(files))
            for key, chosen in (("te", order[: self.test_per_class]), ("tr", order[self.test_per_class :])):
                pics = [to_tensor(self._read(self.root / task.params["folder"] / cls / files[i])[None])
                        for i in sorted(chosen)]  # fmt: skip
                parts["x" + key] += [resize(p, self.image_size, self.channels) for p in pics]
                parts["y" + key] += [torch.full((len(pics),), label)]
        shape = (self.channels, self.image_size, self.image_size)
        x_train, x_test = torch.cat(parts["xtr"]), torch.cat(parts["xte"])
        y_train, y_test = torch.cat(parts["ytr"]), torch.cat(parts["yte"])
        return SupervisedData(
            x_train, y_train, x_test, y_test, shape, self.n_outputs, "cross_entropy", "error"
        )

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(100, "error", 0.1, batch_size=32)
