"""Readers for the publishers' file formats. Nothing here unpickles.

* IDX (MNIST, Fashion-MNIST, KMNIST), gzipped or not;
* CIFAR-10 / CIFAR-100 *binary* versions (the python versions are pickles and are refused);
* SVHN's MATLAB ``*_32x32.mat`` (``scipy.io.loadmat``, MATLAB v5, no pickle);
* Omniglot's zips of PNGs (``images_background.zip`` / ``images_evaluation.zip``);
* MovieLens ``u.data`` (tab-separated) and ``ratings.dat`` (``::``-separated);
* Jester's spreadsheets (``.xls``, with the optional ``xlrd``) or their CSV form;
* a generic ratings CSV ``user,item,rating``.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from metaenvs.data.integrity import max_bytes, read_file, read_limited, read_member, regular_file
from metaenvs.errors import DataError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
PNG_MAX_BYTES = 16 << 20  # one Omniglot drawing is a few hundred bytes
OMNIGLOT_PNG = re.compile(
    r"(?:^|/)(?P<alphabet>[^/]+)/character(?P<number>\d+)/(?P<id>\d{4})_(?P<drawer>\d{2})\.png$"
)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array of its declared type and shape."""
    path = Path(path)
    regular_file(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
            raw = read_limited(fh, str(path))
    except (OSError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path} is not a readable IDX file ({exc}); fetch it again.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=IDX_TYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape}, but the file holds {data.size} values.")
    return data.reshape(shape).astype(np.dtype(IDX_TYPES[raw[2]]).newbyteorder("="))


def read_cifar_binary(
    archive: str | Path, members: Iterable[str], label_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR binary records (``label_bytes`` label bytes then 3x32x32 CHW pixels).

    Returns:
        ``(images NHWC uint8, labels (N, label_bytes) uint8)`` over the members in order.
    """
    record = label_bytes + 3 * 32 * 32
    chunks = []
    with _open_tar(archive) as tar:
        for name in members:
            raw = np.frombuffer(_tar_member(tar, archive, name), dtype=np.uint8)
            if raw.size % record:
                raise DataError(f"{archive}:{name} is not a whole number of {record}-byte records.")
            chunks.append(raw.reshape(-1, record))
    rows = np.concatenate(chunks)
    images = rows[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), rows[:, :label_bytes].copy()


def _open_tar(archive: str | Path) -> tarfile.TarFile:
    regular_file(archive)
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}); fetch it again.") from exc


def _tar_member(tar: tarfile.TarFile, archive: str | Path, name: str) -> bytes:
    """The bytes of a regular member of ``tar``, at most :func:`max_bytes` of them."""
    try:
        info = tar.getmember(name)
    except KeyError as exc:
        raise DataError(f"{archive} has no member {name}; is it the binary version?") from exc
    if not info.isfile():
        raise DataError(f"{archive}:{name} is not a regular file member.")
    if info.size > max_bytes():
        raise DataError(
            f"{archive}:{name} is {info.size} bytes, more than the {max_bytes()}-byte limit; if it is "
            "genuine, raise METAENVS_MAX_FILE_BYTES."
        )
    try:
        return read_limited(tar.extractfile(info), f"{archive}:{name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{archive}:{name} cannot be read ({exc}); fetch the archive again.") from exc


def read_tar_text(archive: str | Path, member: str) -> list[str]:
    """Non-empty lines of a text member of a tar archive."""
    with _open_tar(archive) as tar:
        text = _tar_member(tar, archive, member).decode("utf-8", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN's ``*_32x32.mat``: images NHWC uint8 and labels 0-9 (the file stores 0 as 10)."""
    from scipy.io import loadmat

    regular_file(path)
    try:
        mat = loadmat(str(path))
    except (ValueError, TypeError, OSError) as exc:
        raise DataError(f"{path} is not a readable MATLAB file ({exc}); fetch it again.") from exc
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path} has no X and y arrays; is it SVHN's *_32x32.mat?")
    images = np.ascontiguousarray(mat["X"].transpose(3, 0, 1, 2)).astype(np.uint8)
    labels = mat["y"].reshape(-1).astype(np.int64) % 10
    return images, labels


def read_omniglot_zip(path: str | Path) -> dict[str, np.ndarray]:
    """Read an Omniglot zip of 105x105 PNGs.

    Returns:
        Arrays ``images`` (bool, True = paper), ``alphabet`` (str), ``character``,
        ``char_id`` and ``drawer``, one entry per PNG, sorted by (char_id, drawer).
    """
    from PIL import Image

    records = []
    with _open_zip(path) as zf:
        for name in zf.namelist():
            match = OMNIGLOT_PNG.search(name)
            if match is None:
                continue
            with Image.open(io.BytesIO(read_member(zf, name, PNG_MAX_BYTES))) as im:
                pixels = np.asarray(im.convert("1"), dtype=bool)
            records.append(
                (int(match["id"]), int(match["drawer"]), match["alphabet"], int(match["number"]), pixels)
            )
    if not records:
        raise DataError(f"{path} holds no Omniglot PNGs named Alphabet/characterNN/XXXX_YY.png.")
    records.sort(key=lambda r: (r[0], r[1]))
    return {
        "images": np.stack([r[4] for r in records]),
        "alphabet": np.array([r[2] for r in records]),
        "character": np.array([r[3] for r in records], dtype=np.int64),
        "char_id": np.array([r[0] for r in records], dtype=np.int64),
        "drawer": np.array([r[1] for r in records], dtype=np.int64),
    }


def _open_zip(path: str | Path) -> zipfile.ZipFile:
    regular_file(path)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable zip archive ({exc}); fetch it again.") from exc


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """Exact area-average resize of square images to ``size`` x ``size``, rounded to uint8.

    Each output pixel is the mean of the input over its footprint, partial pixels weighted by
    their overlap (OpenCV's INTER_AREA definition), then ``floor(255 * v + 0.5)``. Input
    values are in ``[0, 1]``.
    """
    n = images.shape[-1]
    scale = n / size
    edges = np.arange(size + 1) * scale
    left, right = edges[:-1, None], edges[1:, None]
    cols = np.arange(n)[None, :]
    weights = np.clip(np.minimum(right, cols + 1) - np.maximum(left, cols), 0.0, None) / scale
    out = weights @ images.astype(np.float64) @ weights.T
    return np.floor(255.0 * out + 0.5).astype(np.uint8)


def read_movielens(path: str | Path, member: str) -> np.ndarray:
    """Read MovieLens ratings (``u.data`` or ``ratings.dat``), from a zip or a plain file.

    Returns:
        An int64 array of rows ``(user, item, rating, timestamp)`` in file order.
    """
    path = Path(path)
    regular_file(path)
    if zipfile.is_zipfile(path):
        with _open_zip(path) as zf:
            text = read_member(zf, member).decode("latin-1")
    else:
        text = read_file(path).decode("latin-1")
    sep = "::" if "::" in text[:200] else None
    rows = [line.split(sep) for line in text.splitlines() if line.strip()]
    try:
        table = np.array(rows, dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{path}:{member} is not a MovieLens ratings file: {exc}") from exc
    if table.ndim != 2 or table.shape[1] != 4:
        raise DataError(f"{path}:{member}: expected 4 columns user, item, rating, timestamp.")
    return table


def read_jester(path: str | Path, member: str | None = None) -> np.ndarray:
    """Read a Jester ratings sheet: rows = users, column 0 = number rated, then 100 jokes.

    Accepts the ``.xls`` (needs ``xlrd``), a CSV conversion, or either inside a zip.

    Returns:
        float64 array ``(n_users, 101)`` with 99 marking "not rated", as published.
    """
    path = Path(path)
    regular_file(path)
    if zipfile.is_zipfile(path):
        with _open_zip(path) as zf:
            names = [member] if member else [n for n in zf.namelist() if n.endswith((".xls", ".csv"))]
            if not names:
                raise DataError(f"{path} holds no .xls or .csv Jester sheet.")
            data, name = read_member(zf, names[0]), names[0]
    else:
        data, name = read_file(path), path.name
    if name.endswith(".xls"):
        try:
            import xlrd
        except ImportError as exc:
            raise DataError(
                f"Reading {name} needs xlrd: pip install 'metaenvs[data]' (or give the CSV form)."
            ) from exc
        sheet = xlrd.open_workbook(file_contents=data).sheet_by_index(0)
        return np.array([sheet.row_values(i) for i in range(sheet.nrows)], dtype=np.float64)
    try:
        rows = list(csv.reader(io.StringIO(data.decode())))
        table = np.array([[float(v) for v in row] for row in rows if row], dtype=np.float64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: {name} is not a Jester sheet of numbers ({exc}).") from exc
    if table.ndim != 2 or table.shape[1] < 2:
        raise DataError(f"{path}: {name} is not a Jester sheet (expected a count column, then one per joke).")
    return table


def read_ratings_csv(
    path: str | Path, delimiter: str = ",", header: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a ``user, item, rating`` CSV (extra columns are ignored).

    Args:
        path: The file.
        delimiter: Field separator.
        header: Whether the first row is a header; ``None`` guesses from whether it parses.

    Returns:
        ``(users, items, ratings)``: users and items as strings, ratings as float64.
    """
    regular_file(path)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.reader(fh, delimiter=delimiter) if row]
    if not rows:
        raise DataError(f"{path} holds no rows; expected user, item, rating.")
    if header is None:
        try:
            float(rows[0][2])
            header = False
        except ValueError:
            header = True
        except IndexError:
            header = False  # a short first row is reported below
    rows = rows[1:] if header else rows
    bad = next((i for i, r in enumerate(rows) if len(r) < 3), None)
    if bad is not None:
        raise DataError(f"{path}: row {bad + 1 + int(header)} has fewer than 3 fields (user, item, rating).")
    try:
        ratings = np.array([float(r[2]) for r in rows])
    except ValueError as exc:
        raise DataError(f"{path}: a rating is not a number ({exc}).") from exc
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), ratings
