"""Checking data files against their checksums, and reading untrusted files with a size limit.

A successful sha256 check is remembered in a stamp file ``.NAME.verified`` beside the data file,
so that large files are not hashed at every load. The stamp records the file's sha256 together
with its size, mtime, ctime, inode and device; it is trusted only if all of these are unchanged
and the file had not been changed shortly before it was hashed (coarse file clocks could otherwise
hide a write made in the same clock tick). ``ctime`` cannot be set back from user space, so a file
rewritten in place at the same size with its mtime restored is hashed again, and refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat as stat_mod
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO

from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.io import sha256_file

MAX_BYTES_VAR = "METAENVS_MAX_FILE_BYTES"
DEFAULT_MAX_BYTES = 4 << 30
STAMP_VERSION = 2
STAMP_MAX_BYTES = 4096
# A file whose ctime is this close to (or after) the moment it was hashed is hashed again next time.
RACY_NS = 2_000_000_000


def max_bytes() -> int:
    """The largest data file or archive member read (``METAENVS_MAX_FILE_BYTES``, default 4 GiB).

    Raises:
        InvalidArgumentError: If the variable is set but is not a positive integer.
    """
    raw = os.environ.get(MAX_BYTES_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidArgumentError(
            f"{MAX_BYTES_VAR}={raw!r} is not a positive whole number of bytes; unset it or set, e.g., "
            f"{MAX_BYTES_VAR}={DEFAULT_MAX_BYTES}."
        )
    return value


def _too_large(what: str, size: int | str, limit: int) -> DataError:
    return DataError(
        f"{what} is larger than the {limit}-byte limit ({size} bytes); it was not read. If the file is "
        f"genuine, raise the limit with {MAX_BYTES_VAR}=<bytes>."
    )


def read_limited(fh: IO[bytes], what: str, limit: int | None = None) -> bytes:
    """Read all of ``fh``, refusing more than ``limit`` bytes (default :func:`max_bytes`).

    Raises:
        DataError: If more than ``limit`` bytes are there.
    """
    limit = max_bytes() if limit is None else limit
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise _too_large(what, f"more than {limit}", limit)
    return data


def regular_file(path: str | os.PathLike, limit: int | None = None) -> os.stat_result:
    """``stat`` of ``path``, which must be a regular file of at most ``limit`` bytes.

    Opening a FIFO or a device would hang or never end, so they are refused before any read.

    Raises:
        DataError: If ``path`` is missing, not a regular file, or too large.
    """
    limit = max_bytes() if limit is None else limit
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}. Check the path.") from exc
    if not stat_mod.S_ISREG(st.st_mode):
        raise DataError(f"{path} is not a regular file; replace it with the data file.")
    if st.st_size > limit:
        raise _too_large(str(path), st.st_size, limit)
    return st


def read_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`regular_file`)."""
    regular_file(path, limit)
    with open(path, "rb") as fh:
        return read_limited(fh, str(path), limit)


def read_member(zf: zipfile.ZipFile, name: str, limit: int | None = None) -> bytes:
    """The bytes of zip member ``name``, refusing one that inflates past ``limit`` bytes.

    Raises:
        DataError: If the member is absent or too large (by its header or by what it inflates to).
    """
    limit = max_bytes() if limit is None else limit
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise DataError(f"{zf.filename} has no member {name}; is it the publisher's archive?") from exc
    if info.file_size > limit:
        raise _too_large(f"{zf.filename}:{name}", info.file_size, limit)
    with zf.open(info) as fh:
        return read_limited(fh, f"{zf.filename}:{name}", limit)


def stamp_path(path: Path) -> Path:
    """Where the verification stamp of ``path`` lives."""
    return path.parent / f".{path.name}.verified"


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def stamped_sha256(path: Path, st: os.stat_result, expected: str) -> str | None:
    """The sha256 recorded by a stamp that still describes ``path``, or ``None``.

    Args:
        path: The data file.
        st: Its current ``stat``.
        expected: What the file was checked against (its catalogue checksums); a stamp written
            for other expectations is ignored.
    """
    stamp = stamp_path(path)
    try:
        with open(stamp, "rb") as fh:
            record = json.loads(fh.read(STAMP_MAX_BYTES + 1) or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != STAMP_VERSION:
        return None
    hashed_at = record.get("hashed_at_ns")
    if (
        record.get("file") != _identity(st)
        or record.get("expected") != expected
        or not isinstance(hashed_at, int)
        or st.st_ctime_ns + RACY_NS > hashed_at
        or not isinstance(record.get("sha256"), str)
    ):
        return None
    return record["sha256"]


def hash_file(path: Path) -> tuple[str, os.stat_result, int]:
    """``(sha256, stat before hashing, time hashing began in ns)`` of ``path``."""
    st = os.stat(path)
    started = time.time_ns()
    return sha256_file(path), st, started


def write_stamp(path: Path, sha256: str, st: os.stat_result, hashed_at_ns: int, expected: str) -> None:
    """Record that ``path`` (as described by ``st``) has ``sha256``; atomic, best effort.

    Nothing is written if the file changed while it was hashed, or if the folder is read-only
    (the file is then verified again next time).
    """
    with contextlib.suppress(OSError):
        if _identity(os.stat(path)) != _identity(st):
            return
        record = {
            "version": STAMP_VERSION,
            "sha256": sha256,
            "file": _identity(st),
            "hashed_at_ns": hashed_at_ns,
            "expected": expected,
        }
        stamp = stamp_path(path)
        fd, tmp = tempfile.mkstemp(prefix=stamp.name + ".", suffix=".tmp", dir=stamp.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(record, out)
            os.replace(tmp, stamp)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
