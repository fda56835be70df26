"""Published class-split lists shipped with the suite (see ``README.md`` here for their sources).

The lists are data carried over verbatim with their source named; each is checked against the
source's sha256 when read, so an edited or truncated copy is refused rather than used.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources

from metaenvs.errors import DataError

VINYALS_SHA256 = {
    "train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
    "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
    "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
}
VINYALS_TRAINVAL_SHA256 = "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a"
VINYALS_SOURCE = (
    "jakesnell/prototypical-networks @ c9bb4d258267c11cb6e23f0a19242d24ca98ad8a, "
    "data/omniglot/splits/vinyals/{train,val,test}.txt"
)


def _read(name: str, sha256: str) -> bytes:
    raw = resources.files(__name__).joinpath(name).read_bytes()
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(
            f"The shipped split list {name} does not match its source's sha256 {sha256[:16]}... "
            "(metaenvs/data/splits/README.md names the source); reinstall metaenvs."
        )
    return raw


@functools.cache
def vinyals_omniglot(split: str) -> tuple[tuple[str, int, int], ...]:
    """The Vinyals et al. (2016) Omniglot split as ``(alphabet, character number, quarter turns)``.

    Args:
        split: ``"train"`` (1,028 characters), ``"val"`` (172), ``"trainval"`` (their union: the 1,200
            training characters of MAML and Reptile) or ``"test"`` (423); each at 4 rotations.

    Raises:
        DataError: A shipped list differs from its source.
    """
    parts = ("train", "val") if split == "trainval" else (split,)
    if any(p not in VINYALS_SHA256 for p in parts):
        raise DataError(f"Unknown Vinyals split {split!r}; choose train, val, trainval or test.")
    raw = b"".join(_read(f"omniglot_vinyals_{p}.txt", VINYALS_SHA256[p]) for p in parts)
    if split == "trainval" and hashlib.sha256(raw).hexdigest() != VINYALS_TRAINVAL_SHA256:
        raise DataError("train.txt + val.txt is not the published trainval.txt; reinstall metaenvs.")
    rows = []
    for line in raw.decode().split():
        alphabet, character, rot = line.split("/")
        degrees = int(rot.removeprefix("rot"))
        rows.append((alphabet, int(character.removeprefix("character")), degrees // 90))
    return tuple(rows)


TORCHMETA = (
    "tristandeleu/pytorch-meta @ d55d89ebd47f340180267106bde3e4b723f23762, torchmeta/datasets/assets/cifar100"
)
CIFAR_SPLITS_SHA256 = {
    ("cifar_fs", "train"): "e0feef3aef13fc7320d5deef5ae77d91edd28041d9a173939ec48cea68135ef0",
    ("cifar_fs", "val"): "d9d6e267b5dad5c2267ff7dd98ebb18bb016f7929b56839422bb34fb53bcb3ef",
    ("cifar_fs", "test"): "e199c74ef4f014ea3f74da1b6cf74795d32747183426c2a7e6ee4308d3bf47e3",
    ("fc100", "train"): "a19e219adef452c071eb09d14758a9c45562643b9aafa38826e679ed285e117b",
    ("fc100", "val"): "6d228dac7040959f0c2f0385c53c2cd9a5369ba9eefd1b7cdceecb47041598c4",
    ("fc100", "test"): "d2cf86db6ec0250993b18cb78ebde10758f06eaaaff1611390e4442ee7c6fc41",
}
SPLITS = ("train", "val", "test")


@functools.cache
def cifar100_hierarchy() -> dict[str, str]:
    """Every CIFAR-100 fine class's superclass, from the CIFAR-FS lists (which cover all 100)."""
    return {fine: coarse for split in SPLITS for coarse, fine in _cifar_list("cifar_fs", split)}


def _cifar_list(benchmark: str, split: str) -> list:
    if (benchmark, split) not in CIFAR_SPLITS_SHA256:
        raise DataError(f"Unknown split {split!r} of {benchmark}; choose {', '.join(SPLITS)}.")
    return json.loads(_read(f"{benchmark}_{split}.json", CIFAR_SPLITS_SHA256[(benchmark, split)]))


@functools.cache
def cifar_fs(split: str) -> tuple[str, ...]:
    """CIFAR-FS (Bertinetto et al. 2019): the fine CIFAR-100 classes of ``split`` (64 / 16 / 20)."""
    return tuple(fine for _, fine in _cifar_list("cifar_fs", split))


@functools.cache
def fc100(split: str) -> tuple[str, ...]:
    """FC100 (Oreshkin et al. 2018): the fine classes of ``split``'s superclasses (12 / 4 / 4 of 20, so
    60 / 20 / 20 classes; the superclasses of ElementAI/TADAM datasets/create_dataset_cifar100.py)."""
    coarse = set(_cifar_list("fc100", split))
    return tuple(sorted(fine for fine, c in cifar100_hierarchy().items() if c in coarse))
