"""Write small files in the publishers' formats, from the shared compact data or generated.

Used by the tests to check that canonical and compact readers agree, to serve downloads
from 127.0.0.1, and to provide the data sets that the shared folder lacks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from metaenvs.data import catalog

SHARED = Path(os.environ.get("METAENVS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
COMPACT = (
    "omniglot_28x28.npz",
    "movielens_100k.npz",
    "jester1.npz",
    "mnist_subset.npz",
    "cifar10_subset.npz",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin(name: str, folder: Path) -> None:
    """Point catalogue entry ``name`` at the files written under ``folder/name`` (their sha256)."""
    entry = catalog.entry(name)
    files = tuple(
        replace(f, sha256=sha256(folder / name / f.filename), size=None, md5=None, members={})
        for f in entry.files
    )
    catalog.add(replace(entry, files=files))


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def write_idx_set(folder: Path, train_x, train_y, test_x, test_y) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (
        ("train-images-idx3-ubyte.gz", train_x),
        ("train-labels-idx1-ubyte.gz", train_y),
        ("t10k-images-idx3-ubyte.gz", test_x),
        ("t10k-labels-idx1-ubyte.gz", test_y),
    ):
        (folder / name).write_bytes(idx_bytes(np.asarray(arr)))


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary CIFAR records: label byte(s) then CHW pixels."""
    labels = labels.reshape(len(images), -1).astype(np.uint8)
    pixels = images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.uint8)
    return np.concatenate([labels, pixels], axis=1).tobytes()


def write_cifar10(path: Path, images, labels, is_test, class_names) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    train = np.flatnonzero(~is_test)
    batches = np.array_split(train, 5)
    with tarfile.open(path, "w:gz") as tar:
        for i, idx in enumerate(batches, start=1):
            add_tar_member(
                tar, f"cifar-10-batches-bin/data_batch_{i}.bin", cifar_records(images[idx], labels[idx])
            )
        test = np.flatnonzero(is_test)
        add_tar_member(tar, "cifar-10-batches-bin/test_batch.bin", cifar_records(images[test], labels[test]))
        add_tar_member(tar, "cifar-10-batches-bin/batches.meta.txt", ("\n".join(class_names) + "\n").encode())


def write_cifar100(path: Path, rng: np.random.Generator, n_train: int = 300, n_test: int = 100) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            fine = np.arange(n) % 100
            labels = np.stack([fine // 5, fine], axis=1)
            add_tar_member(tar, f"cifar-100-binary/{split}.bin", cifar_records(images, labels))
            out[split] = (images, fine)
        names = "\n".join(f"class{i}" for i in range(100)) + "\n"
        add_tar_member(tar, "cifar-100-binary/fine_label_names.txt", names.encode())
    return out


def write_svhn(path: Path, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    digits = np.arange(n) % 10
    savemat(str(path), {"X": images.transpose(1, 2, 3, 0), "y": np.where(digits == 0, 10, digits)[:, None]})
    return images, digits


def movielens_text(user, item, rating, timestamp, sep: str = "\t") -> str:
    return "".join(
        f"{u}{sep}{i}{sep}{r}{sep}{t}\n" for u, i, r, t in zip(user, item, rating, timestamp, strict=True)
    )


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def write_movielens1m(path: Path, rng: np.random.Generator, users: int = 220, items: int = 110) -> np.ndarray:
    rows = []
    for u in range(1, users + 1):
        for i in np.sort(rng.choice(items, size=80, replace=False)) + 1:
            rows.append((u, int(i), int(rng.integers(1, 6)), 978300000 + len(rows)))
    table = np.array(rows)
    write_zip(path, {"ml-1m/ratings.dat": movielens_text(*table.T, sep="::").encode("latin-1")})
    return table


def omniglot_zips(folder: Path, alphabets: dict[int, list[str]]) -> None:
    """Write ``images_background.zip`` / ``images_evaluation.zip`` holding only ``alphabets``
    (subset index -> names), from the shared lossless 105x105 file."""
    from PIL import Image

    with np.load(SHARED / "omniglot_105x105_bitpacked.npz") as f:
        names = f["alphabet_names"]
        keep = np.isin(names[f["alphabet"]], [n for group in alphabets.values() for n in group])
        packed = f["images_packed"][keep]
        meta = {k: f[k][keep] for k in ("alphabet", "character", "char_id", "drawer", "subset")}
    images = np.unpackbits(packed, axis=1, count=105 * 105).reshape(-1, 105, 105).astype(bool)
    for subset, zip_name in ((0, "images_background"), (1, "images_evaluation")):
        members = {}
        for j in np.flatnonzero(meta["subset"] == subset):
            buf = io.BytesIO()
            Image.fromarray(images[j]).save(buf, format="PNG")
            name = (f"{zip_name}/{names[meta['alphabet'][j]]}/character{meta['character'][j]:02d}/"
                    f"{meta['char_id'][j]:04d}_{meta['drawer'][j]:02d}.png")  # fmt: skip
            members[name] = buf.getvalue()
        write_zip(folder / f"{zip_name}.zip", members)


def build_data_root(root: Path) -> Path:
    """A data folder: links to the shared compact files, plus generated canonical files for the
    data sets the shared folder lacks (pinned in the catalogue by their sha256)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in COMPACT:
        if (SHARED / name).is_file() and not (root / name).exists():
            os.symlink(SHARED / name, root / name)
    for name in ("fashion_mnist", "kmnist"):
        x = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
        y = (np.arange(300) % 10).astype(np.uint8)
        write_idx_set(root / name, x[:200], y[:200], x[200:], y[200:])
        pin(name, root)
    write_svhn(root / "svhn" / "train_32x32.mat", rng, 200)
    write_svhn(root / "svhn" / "test_32x32.mat", rng, 100)
    pin("svhn", root)
    write_cifar100(root / "cifar100" / "cifar-100-binary.tar.gz", rng)
    pin("cifar100", root)
    write_movielens1m(root / "movielens1m" / "ml-1m.zip", rng)
    pin("movielens1m", root)
    return root
