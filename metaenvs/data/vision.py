"""Vision data sets as NHWC uint8 arrays, from canonical files or the compact form."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaenvs.data import formats
from metaenvs.data.catalog import locate
from metaenvs.data.sources import IDX_NAMES
from metaenvs.errors import DataError, InvalidArgumentError


@dataclass(frozen=True)
class VisionArrays:
    """A labelled image set: ``images`` uint8 NHWC, ``labels`` int64, ``is_test`` bool."""

    images: np.ndarray
    labels: np.ndarray
    is_test: np.ndarray
    class_names: tuple[str, ...]


DIGITS = tuple(str(i) for i in range(10))
VISION_SETS = ("mnist", "fashion_mnist", "kmnist", "svhn", "cifar10", "cifar100", "digits")


def _key(root: str | os.PathLike | None) -> str | None:
    return None if root is None else str(Path(root).expanduser().resolve())


@functools.lru_cache(maxsize=8)
def _vision_cached(name: str, root: str | None) -> VisionArrays:
    if name == "digits":
        return _sklearn_digits()
    found = locate(name, root)
    if found.form == "compact":
        with np.load(found.paths[CATALOG_COMPACT[name]]) as f:
            return VisionArrays(
                f["images"] if f["images"].ndim == 4 else f["images"][..., None],
                f["labels"].astype(np.int64),
                f["split"] == 1,
                tuple(str(c) for c in f["class_names"]),
            )
    return _VISION_CANONICAL[name](found.paths)


def vision(name: str, root: str | os.PathLike | None = None) -> VisionArrays:
    """Load a vision data set (``VISION_SETS``) as NHWC uint8 images, whichever form is present."""
    if name not in VISION_SETS:
        raise InvalidArgumentError(f"Unknown vision data set {name!r}; choose from {', '.join(VISION_SETS)}.")
    return _vision_cached(name, _key(root))


CATALOG_COMPACT = {"mnist": "mnist_subset.npz", "cifar10": "cifar10_subset.npz"}


def _idx_canonical(paths: dict[str, Path], class_names: tuple[str, ...]) -> VisionArrays:
    tr_x, tr_y, te_x, te_y = (formats.read_idx(paths[n]) for n in IDX_NAMES)
    images = np.concatenate([tr_x, te_x])[..., None]
    is_test = np.concatenate([np.zeros(len(tr_y), bool), np.ones(len(te_y), bool)])
    return VisionArrays(images, np.concatenate([tr_y, te_y]).astype(np.int64), is_test, class_names)


FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
KMNIST = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


def _svhn_canonical(paths: dict[str, Path]) -> VisionArrays:
    tr_x, tr_y = formats.read_svhn_mat(paths["train_32x32.mat"])
    te_x, te_y = formats.read_svhn_mat(paths["test_32x32.mat"])
    is_test = np.concatenate([np.zeros(len(tr_y), bool), np.ones(len(te_y), bool)])
    return VisionArrays(np.concatenate([tr_x, te_x]), np.concatenate([tr_y, te_y]), is_test, DIGITS)


def _cifar10_canonical(paths: dict[str, Path]) -> VisionArrays:
    archive = paths["cifar-10-binary.tar.gz"]
    members = [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]
    tr_x, tr_y = formats.read_cifar_binary(archive, members, 1)
    te_x, te_y = formats.read_cifar_binary(archive, ["cifar-10-batches-bin/test_batch.bin"], 1)
    names = formats.read_tar_text(archive, "cifar-10-batches-bin/batches.meta.txt")
    is_test = np.concatenate([np.zeros(len(tr_y), bool), np.ones(len(te_y), bool)])
    labels = np.concatenate([tr_y[:, 0], te_y[:, 0]]).astype(np.int64)
    return VisionArrays(np.concatenate([tr_x, te_x]), labels, is_test, tuple(names))


def _cifar100_canonical(paths: dict[str, Path]) -> VisionArrays:
    archive = paths["cifar-100-binary.tar.gz"]
    tr_x, tr_y = formats.read_cifar_binary(archive, ["cifar-100-binary/train.bin"], 2)
    te_x, te_y = formats.read_cifar_binary(archive, ["cifar-100-binary/test.bin"], 2)
    names = formats.read_tar_text(archive, "cifar-100-binary/fine_label_names.txt")
    is_test = np.concatenate([np.zeros(len(tr_y), bool), np.ones(len(te_y), bool)])
    labels = np.concatenate([tr_y[:, 1], te_y[:, 1]]).astype(np.int64)  # fine labels
    return VisionArrays(np.concatenate([tr_x, te_x]), labels, is_test, tuple(names))


def _sklearn_digits() -> VisionArrays:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataError("The 'digits' data set comes with scikit-learn: pip install scikit-learn.") from exc
    bunch = load_digits()
    images = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
    return VisionArrays(images, bunch.target.astype(np.int64), np.zeros(len(images), bool), DIGITS)


_VISION_CANONICAL = {
    "mnist": lambda p: _idx_canonical(p, DIGITS),
    "fashion_mnist": lambda p: _idx_canonical(p, FASHION),
    "kmnist": lambda p: _idx_canonical(p, KMNIST),
    "svhn": _svhn_canonical,
    "cifar10": _cifar10_canonical,
    "cifar100": _cifar100_canonical,
}
