"""Reading files that may come from anyone, without hanging or reading without end.

Every file the leaderboard reads goes through :func:`read_limited`: it refuses what is not a regular
file (a folder, a FIFO, a device) before opening it, opens without blocking, checks the size of what
it opened, and never reads more than the limit. Board files are read with ``follow_symlinks=False``,
so a symbolic link placed in a board (to ``/dev/zero``, or outside the board) is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from metaenvs.errors import SubmissionError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_limited(path: str | os.PathLike, max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Args:
        path: The file.
        max_bytes: Larger files are refused unread.
        follow_symlinks: Whether a symbolic link to a regular file is read (False for board files).

    Raises:
        SubmissionError: The file is missing, not a regular file, a symbolic link (when not followed),
            unreadable, or larger than ``max_bytes``.
    """
    path = Path(path)
    try:
        info = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file.") from None
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionError(f"{path}: is {_kind(info.st_mode)}, not a regular file; it is not read.")
    if info.st_size > max_bytes:
        raise SubmissionError(
            f"{path}: {info.st_size} bytes is over the size limit of {max_bytes} bytes; it is refused unread."
        )
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        reason = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened ({exc.strerror})"
        raise SubmissionError(f"{path}: {reason}; it is not read.") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped between the stat and the open
            raise SubmissionError(f"{path}: is {_kind(opened.st_mode)}, not a regular file; it is not read.")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc.strerror}).") from None
    finally:
        os.close(fd)
    if total > max_bytes:
        raise SubmissionError(f"{path}: grew past the size limit of {max_bytes} bytes while being read.")
    return b"".join(chunks)


def is_link_or_missing_target(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a symbolic link whose target does not exist (a dangling link)."""
    return os.path.islink(path) and not os.path.exists(path)
