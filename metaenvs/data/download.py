"""The data folder and verified, atomic downloads.

Where data lives, first match wins: the ``data_dir`` argument, the ``METAENVS_DATA``
environment variable, ``$XDG_CACHE_HOME/metaenvs``, ``~/.cache/metaenvs``.

A download streams into a temporary file next to its destination while hashing it,
checks the length the server announced, a size cap (the catalogue's size), an overall
deadline (``METAENVS_DOWNLOAD_DEADLINE`` seconds, besides the socket timeout) and the expected
sha256, and only then renames it into place: a refused or broken transfer leaves nothing behind,
not even a folder it created.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.io import sha256_file

ENV_VAR = "METAENVS_DATA"
DEADLINE_VAR = "METAENVS_DOWNLOAD_DEADLINE"
DEFAULT_DEADLINE_S = 3600.0
CHUNK = 1 << 16


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder data sets are read from and downloaded to (not created here)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "metaenvs"


def sha256_matches(path: str | os.PathLike, sha256: str | None) -> bool:
    """True if ``path`` exists and (when ``sha256`` is given) has that digest."""
    path = Path(path)
    return path.is_file() and (sha256 is None or sha256_file(path) == sha256.lower())


def download_deadline(explicit: float | None = None) -> float:
    """The overall wall-clock limit of one download, in seconds.

    The ``deadline`` argument wins, then ``METAENVS_DOWNLOAD_DEADLINE``, then one hour.

    Raises:
        InvalidArgumentError: If the value is not a positive number of seconds.
    """
    raw: object = explicit if explicit is not None else os.environ.get(DEADLINE_VAR, "").strip() or None
    if raw is None:
        return DEFAULT_DEADLINE_S
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(
            f"Download deadline {raw!r} is not a positive number of seconds; set {DEADLINE_VAR} "
            f"(or pass deadline=) to, e.g., {DEFAULT_DEADLINE_S:g}."
        )
    return value


def missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, deepest first (removed again if a fetch fails)."""
    out = []
    for parent in path.parents:
        if parent.exists():
            break
        out.append(parent)
    return out


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    timeout: float = 60.0,
    max_bytes: int | None = None,
    deadline: float | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking length, size cap, deadline and sha256.

    Args:
        url: What to download.
        dest: Where the verified file goes.
        sha256: Expected sha256, if known.
        timeout: Socket timeout of each network operation, in seconds.
        max_bytes: Refuse the transfer as soon as more than this many bytes arrive (or are
            announced); the catalogue passes each file's size.
        deadline: Overall wall-clock limit in seconds (see :func:`download_deadline`).

    Raises:
        DataError: On a network error, a truncated or oversized transfer, a missed deadline or a
            checksum mismatch; no partial file is left at ``dest`` or next to it, and no folder
            that the download created.
    """
    dest = Path(dest)
    limit_s = download_deadline(deadline)
    made = missing_parents(dest)
    started = time.monotonic()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DataError(
            f"Cannot write to {dest.parent}: {exc.strerror or exc}. Point {ENV_VAR} at a writable folder."
        ) from exc
    tmp = Path(tmp_name)
    ok = False
    try:
        digest, received = hashlib.sha256(), 0
        socket_timeout = min(timeout, limit_s)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=socket_timeout) as response:
            length = response.headers.get("Content-Length")
            announced = int(length) if length is not None else None
            if announced is not None and max_bytes is not None and announced > max_bytes:
                raise _oversized(url, f"announces {announced} bytes", max_bytes)
            while chunk := response.read1(CHUNK):
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise _oversized(url, f"sent more than {max_bytes} bytes", max_bytes)
                out.write(chunk)
                digest.update(chunk)
                if time.monotonic() - started > limit_s:
                    raise DataError(
                        f"Download of {url} did not finish within its {limit_s:g} s deadline "
                        f"({received} bytes arrived); nothing was kept. Retry on a faster connection, "
                        f"or raise the limit with {DEADLINE_VAR}=<seconds>."
                    )
            out.flush()
            os.fsync(out.fileno())
        if announced is not None and received != announced:
            raise DataError(
                f"Download of {url} was truncated: {received} of {announced} bytes arrived. "
                "Run the command again; nothing was kept."
            )
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataError(
                f"Checksum mismatch for {url}: expected sha256 {sha256}, got {digest.hexdigest()}. "
                "The file was refused and not kept; the source may have changed or been tampered with."
            )
        os.replace(tmp, dest)
        ok = True
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"Could not download {url} to {dest}: {exc}. Download it by hand and place it at "
            f"{dest}, or point {ENV_VAR} at a folder that holds it."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
        if not ok:
            for folder in made:  # deepest first; one that something else wrote into stays
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _oversized(url: str, what: str, cap: int) -> DataError:
    return DataError(
        f"Download of {url} {what}, but the catalogue says the file has {cap}; it was refused and "
        "nothing was kept. The server is not serving the expected file."
    )


def ensure_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    offline: bool = False,
    fetch_command: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Return ``dest`` if it is present and verified, else download it (unless ``offline``).

    Args:
        url: Where the file comes from.
        dest: Where it goes.
        sha256: Its expected sha256, if known.
        offline: Never download; raise instead.
        fetch_command: The command that fetches it, named in the error.
        max_bytes: Refuse a download larger than this (the file's known size).

    Raises:
        DataError: If the file is missing or corrupt and cannot (or may not) be downloaded; the
            message says what to download, where to put it and which command fetches it.
    """
    dest = Path(dest)
    if sha256_matches(dest, sha256):
        return dest
    state = "corrupt (sha256 mismatch)" if dest.is_file() else "missing"
    if offline:
        hint = f" or run `{fetch_command}`" if fetch_command else ""
        raise DataError(
            f"{dest} is {state}. Download {url} (sha256 {sha256 or 'unknown'}) and put it at "
            f"{dest}{hint}; set {ENV_VAR} to use another folder."
        )
    return download(url, dest, sha256, max_bytes=max_bytes)
