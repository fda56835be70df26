"""Write small files in the publishers' formats, from the shared compact data or generated.

Used by the tests to check that canonical and compact readers agree, to serve downloads
from 127.0.0.1, and to provide the data sets that the shared folder lacks.

The shared folder is ``METAENVS_TEST_SHARED`` if set (point it at a missing path to test as a
newcomer does, without data), else ``METAENVS_DATA`` (``.ci/run`` sets it), else
``../shared/datasets`` beside the checkout. Every data set it lacks is replaced in the session's
data folder by a small generated stand-in in the publisher's format (:func:`build_data_root`);
tests whose assertions need the real data set are marked ``@pytest.mark.real_data(...)`` and
skip without it, naming it and how to get it, or fail under ``METAENVS_REQUIRE_DATA=1`` (CI).
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

SHARED = Path(
    os.environ.get("METAENVS_TEST_SHARED")
    or os.environ.get("METAENVS_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
REQUIRE_VAR = "METAENVS_REQUIRE_DATA"
COMPACT = (
    "omniglot_28x28.npz",
    "movielens_100k.npz",
    "jester1.npz",
    "mnist_subset.npz",
    "cifar10_subset.npz",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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


def write_cifar100(path: Path, rng: np.random.Generator, n_train: int = 1600, n_test: int = 400) -> dict:
    """The binary CIFAR-100 archive with the real class and superclass names (alphabetical, as in the
    real files) and ``(n_train + n_test) / 100`` random images per class (20 by default: enough for
    CIFAR-FS and FC100 episodes of 5 shots and 15 queries)."""
    from metaenvs.data.splits import cifar100_hierarchy

    hierarchy = cifar100_hierarchy()
    fine_names, coarse_names = sorted(hierarchy), sorted(set(hierarchy.values()))
    coarse_of = np.array([coarse_names.index(hierarchy[n]) for n in fine_names])
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            fine = np.arange(n) % 100
            labels = np.stack([coarse_of[fine], fine], axis=1)
            add_tar_member(tar, f"cifar-100-binary/{split}.bin", cifar_records(images, labels))
            out[split] = (images, fine)
        for name, names in (("fine", fine_names), ("coarse", coarse_names)):
            text = ("\n".join(names) + "\n").encode()
            add_tar_member(tar, f"cifar-100-binary/{name}_label_names.txt", text)
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


# ----- which real data sets are here ----------------------------------------------------------
catalog.entry("mnist")  # fills the catalogue
ORIGINAL = dict(catalog.CATALOG)  # the publishers' checksums, before any pin()
# Background (subset 0) and evaluation (subset 1) alphabets of Omniglot, with a stand-in's
# character count: 20 for the listed alphabets, 1 for the four with fewer than 20 characters.
OMNIGLOT_SUBSETS = (
    ("Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian", "Asomtavruli_(Georgian)",
     "Balinese", "Bengali", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Braille", "Burmese_(Myanmar)",
     "Cyrillic", "Early_Aramaic", "Futurama", "Grantha", "Greek", "Gujarati", "Hebrew",
     "Inuktitut_(Canadian_Aboriginal_Syllabics)", "Japanese_(hiragana)", "Japanese_(katakana)", "Korean",
     "Latin", "Malay_(Jawi_-_Arabic)", "Mkhedruli_(Georgian)", "N_Ko",
     "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Sanskrit", "Syriac_(Estrangelo)", "Tagalog", "Tifinagh"),
    ("Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta", "Ge_ez", "Glagolitic", "Gurmukhi",
     "Kannada", "Keble", "Malayalam", "Manipuri", "Mongolian", "Old_Church_Slavonic_(Cyrillic)", "Oriya",
     "Sylheti", "Syriac_(Serto)", "Tengwar", "Tibetan", "ULOG"),
)  # fmt: skip
OMNIGLOT_SMALL = ("Blackfoot", "Inuktitut", "Ojibwe", "Tagalog")


def has_real(name: str) -> bool:
    """Whether the shared folder holds the real data set ``name`` (a catalogue name, in either
    form, checked against the publishers' checksums) or the shared file ``name`` (``*.npz``)."""
    if name not in _REAL:
        if name.endswith(".npz"):
            _REAL[name] = (SHARED / name).is_file()
        else:
            ds = ORIGINAL[name]  # hashed here, so that no stamp is written into the shared folder
            compact = ds.compact and _matches(SHARED / ds.compact, ds.compact_sha256)
            canonical = all(_matches(SHARED / name / f.filename, f.sha256) for f in ds.files)
            _REAL[name] = bool(compact or canonical)
    return _REAL[name]


_REAL: dict[str, bool] = {}


def _matches(path: Path, expected: str | None) -> bool:
    return path.is_file() and (expected is None or sha256(path) == expected)


def missing_reason(names: tuple[str, ...]) -> str | None:
    """Why a test that needs the real data sets (or shared files) ``names`` cannot run, or ``None``."""
    absent = [n for n in names if not has_real(n)]
    if not absent:
        return None
    hints = [
        f"{n} (a file of the shared data folder)"
        if n.endswith(".npz")
        else f"the real {ORIGINAL[n].title} ({n}; get it with `metaenvs data fetch {n}`)"
        for n in absent
    ]
    return (
        f"needs {', '.join(hints)} in {SHARED}; point METAENVS_DATA (or METAENVS_TEST_SHARED) at a "
        "folder that holds it"
    )


def require_data() -> bool:
    """Whether a test that needs real data must fail instead of skipping (``METAENVS_REQUIRE_DATA``)."""
    return os.environ.get(REQUIRE_VAR, "").strip().lower() in ("1", "true", "yes")


# ----- stand-ins for the data sets the shared folder lacks -------------------------------------
def ratings_rows(
    rng: np.random.Generator, users: int = 220, items: int = 130, per_user: int = 60
) -> np.ndarray:
    """``(user, item, rating, timestamp)`` rows: each user rates 55 of items 1-100 (the popular
    ones) and 5 of the rest, so the top-100 items and 50+ ratings per user are guaranteed."""
    rows = []
    for u in range(1, users + 1):
        popular = rng.choice(100, size=per_user - 5, replace=False) + 1
        rare = rng.choice(items - 100, size=5, replace=False) + 101
        for i in np.sort(np.concatenate([popular, rare])):
            rows.append((u, int(i), int(rng.integers(1, 6)), 874700000 + len(rows)))
    return np.array(rows, dtype=np.int64)


def movielens100k_rows() -> np.ndarray:
    """MovieLens 100K ``u.data`` rows: the real ones if shared, else the (fixed) stand-in's."""
    if has_real("movielens_100k.npz"):
        with np.load(SHARED / "movielens_100k.npz") as f:
            return np.stack([f["user"], f["item"], f["rating"], f["timestamp"]], axis=1).astype(np.int64)
    return ratings_rows(np.random.default_rng(100))


def write_jester_standin(path: Path, rng: np.random.Generator, users: int = 220) -> np.ndarray:
    """A Jester ``jester_dataset_1_1.zip`` holding the CSV form of the sheet; returns the sheet."""
    sheet = np.full((users, 101), 99.0)
    for u in range(users):
        jokes = rng.choice(100, size=60 + int(rng.integers(0, 30)), replace=False)
        sheet[u, 1 + jokes] = np.round(rng.uniform(-10, 10, size=len(jokes)), 2)
    sheet[:, 0] = (sheet[:, 1:] != 99.0).sum(axis=1)
    text = "\n".join(",".join(f"{v:g}" for v in row) for row in sheet) + "\n"
    write_zip(path, {"jester-data-1.csv": text.encode()})
    return sheet


def write_omniglot_standin(folder: Path, rng: np.random.Generator, side: int = 28) -> None:
    """Omniglot's two zips of PNGs, named as published, for all 50 alphabets (20 characters each,
    1 for the four small ones) with 20 random drawings per character, ``side`` pixels square."""
    from PIL import Image

    pool = []
    for _ in range(1024):
        buf = io.BytesIO()
        Image.fromarray(rng.random((side, side)) > 0.15).save(buf, format="PNG")
        pool.append(buf.getvalue())
    char_id = 0
    for subset, zip_name in enumerate(("images_background", "images_evaluation")):
        members = {}
        for alphabet in sorted(OMNIGLOT_SUBSETS[subset]):
            count = 1 if alphabet.startswith(OMNIGLOT_SMALL) else 20
            for character in range(1, count + 1):
                char_id += 1
                for drawer in range(1, 21):
                    name = f"{zip_name}/{alphabet}/character{character:02d}/{char_id:04d}_{drawer:02d}.png"
                    members[name] = pool[int(rng.integers(len(pool)))]
        write_zip(folder / f"{zip_name}.zip", members)


def write_standin(name: str, root: Path, rng: np.random.Generator) -> None:
    """Write a stand-in for data set ``name`` under ``root/name`` and pin it in the catalogue."""
    if name == "mnist":
        x = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
        y = (np.arange(300) % 10).astype(np.uint8)
        write_idx_set(root / name, x[:200], y[:200], x[200:], y[200:])
    elif name == "cifar10":
        x = rng.integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)
        names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
        is_test = np.arange(300) >= 200
        write_cifar10(root / name / "cifar-10-binary.tar.gz", x, np.arange(300) % 10, is_test, names)
    elif name == "movielens100k":
        text = movielens_text(*movielens100k_rows().T)
        write_zip(root / name / "ml-100k.zip", {"ml-100k/u.data": text.encode()})
    elif name == "jester1":
        write_jester_standin(root / name / "jester_dataset_1_1.zip", rng)
    elif name == "omniglot":
        write_omniglot_standin(root / name, rng)
    pin(name, root)


def build_data_root(root: Path) -> Path:
    """A data folder: links to the shared compact files, plus generated canonical files for the
    data sets the shared folder lacks (pinned in the catalogue by their sha256)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in COMPACT:
        if (SHARED / name).is_file() and not (root / name).exists():
            os.symlink(SHARED / name, root / name)
    for name in ("mnist", "cifar10", "movielens100k", "jester1", "omniglot"):
        if not has_real(name):
            write_standin(name, root, np.random.default_rng([0, len(name)]))
        elif not (root / ORIGINAL[name].compact).exists():  # shared in the canonical form only
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
