"""Omniglot and rating tables as arrays, from canonical files or the compact form.

Both forms give identical arrays (tests check it on files generated in the canonical formats).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaenvs.data import formats
from metaenvs.data.catalog import locate
from metaenvs.errors import DataError, InvalidArgumentError

OMNIGLOT_SIZE = 28
RATING_SETS = ("jester1", "movielens100k", "movielens1m")


def _key(root: str | os.PathLike | None) -> str | None:
    return None if root is None else str(Path(root).expanduser().resolve())


@dataclass(frozen=True)
class OmniglotArrays:
    """Omniglot at 28x28, one row per character (ordered by the global character id).

    Attributes:
        images: uint8 ``(1623, 20, 28, 28)``, 255 = paper, 0 = ink; axis 1 is drawer 1..20.
        alphabet_names: The 50 official alphabet folder names, ordered by first character id.
        alphabet: ``(1623,)`` index into ``alphabet_names``.
        character: ``(1623,)`` 1-based character number within its alphabet.
        subset: ``(1623,)`` 0 = background, 1 = evaluation.
    """

    images: np.ndarray
    alphabet_names: tuple[str, ...]
    alphabet: np.ndarray
    character: np.ndarray
    subset: np.ndarray


def omniglot(root: str | os.PathLike | None = None) -> OmniglotArrays:
    """Load Omniglot (cached per data folder)."""
    return _omniglot_cached(_key(root))


@functools.lru_cache(maxsize=2)
def _omniglot_cached(root: str | None) -> OmniglotArrays:
    found = locate("omniglot", root)
    if found.form == "compact":
        with np.load(found.paths["omniglot_28x28.npz"]) as f:
            order = np.lexsort((f["drawer"], f["char_id"]))
            per_char = order.reshape(-1, 20)[:, 0]
            return OmniglotArrays(
                f["images"][order].reshape(-1, 20, OMNIGLOT_SIZE, OMNIGLOT_SIZE),
                tuple(str(n) for n in f["alphabet_names"]),
                f["alphabet"][per_char].astype(np.int64),
                f["character"][per_char].astype(np.int64),
                f["subset"][per_char].astype(np.int64),
            )
    parts = [formats.read_omniglot_zip(found.paths[f"images_{s}.zip"]) for s in ("background", "evaluation")]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    subset = np.concatenate([np.full(len(p["char_id"]), i) for i, p in enumerate(parts)])
    order = np.lexsort((merged["drawer"], merged["char_id"]))
    if len(order) % 20:
        raise DataError(f"Omniglot zips hold {len(order)} images, not 20 per character.")
    per_char = order.reshape(-1, 20)[:, 0]
    names = merged["alphabet"][per_char]
    first_id = {}
    for name, cid in zip(names, merged["char_id"][per_char], strict=True):
        first_id.setdefault(str(name), int(cid))
    alphabet_names = tuple(sorted(first_id, key=first_id.get))
    index = {n: i for i, n in enumerate(alphabet_names)}
    images = formats.area_resize(merged["images"][order], OMNIGLOT_SIZE)
    return OmniglotArrays(
        images.reshape(-1, 20, OMNIGLOT_SIZE, OMNIGLOT_SIZE),
        alphabet_names,
        np.array([index[str(n)] for n in names], dtype=np.int64),
        merged["character"][per_char],
        subset[per_char].astype(np.int64),
    )


@dataclass(frozen=True)
class RatingsTable:
    """Ratings in long form, in file order: ``user`` and ``item`` ids (int64), ``rating`` (float64)."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray


def ratings(name: str, root: str | os.PathLike | None = None) -> RatingsTable:
    """Load a ratings data set (``RATING_SETS``), cached per data folder."""
    if name not in RATING_SETS:
        raise InvalidArgumentError(
            f"Unknown ratings data set {name!r}; choose from {', '.join(RATING_SETS)}."
        )
    return _ratings_cached(name, _key(root))


def jester_long_form(x100: np.ndarray, missing: int = 9900) -> RatingsTable:
    """Dense Jester ``users x jokes`` matrix of ratings x100 to long form (user = row + 1, joke = col + 1)."""
    rows, cols = np.nonzero(x100 != missing)
    return RatingsTable(rows + 1, cols + 1, x100[rows, cols] / 100.0)


@functools.lru_cache(maxsize=4)
def _ratings_cached(name: str, root: str | None) -> RatingsTable:
    found = locate(name, root)
    if name == "jester1":
        if found.form == "compact":
            with np.load(found.paths["jester1.npz"]) as f:
                return jester_long_form(f["ratings_x100"].astype(np.int64))
        sheet = formats.read_jester(found.paths["jester_dataset_1_1.zip"])
        return jester_long_form(np.rint(sheet[:, 1:] * 100).astype(np.int64))
    if found.form == "compact":
        with np.load(found.paths["movielens_100k.npz"]) as f:
            return RatingsTable(f["user"].astype(np.int64), f["item"].astype(np.int64), f["rating"] * 1.0)
    archive, member = {
        "movielens100k": ("ml-100k.zip", "ml-100k/u.data"),
        "movielens1m": ("ml-1m.zip", "ml-1m/ratings.dat"),
    }[name]
    table = formats.read_movielens(found.paths[archive], member)
    return RatingsTable(table[:, 0], table[:, 1], table[:, 2].astype(np.float64))
