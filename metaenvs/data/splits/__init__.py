"""Published class-split lists shipped with the suite (see ``README.md`` here for their sources).

The lists are data carried over verbatim with their source named; each is checked against the
source's sha256 when read, so an edited or truncated copy is refused rather than used.
"""

from __future__ import annotations

import functools
import hashlib
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
            f"({VINYALS_SOURCE}); reinstall metaenvs."
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
