"""The data folder and verified, atomic downloads.

Where data lives, first match wins: the ``data_dir`` argument, the ``METAENVS_DATA``
environment variable, ``$XDG_CACHE_HOME/metaenvs``, ``~/.cache/metaenvs``.

A download streams into a temporary file next to its destination while hashing it,
checks the length the server announced and the expected sha256, and only then
renames it into place: a refused or broken transfer leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from metaenvs.errors import DataError
from metaenvs.io import sha256_file

ENV_VAR = "METAENVS_DATA"


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


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking length and sha256.

    Raises:
        DataError: On a network error, a truncated transfer or a checksum mismatch; no partial
            file is left at ``dest`` or next to it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest, received, announced = hashlib.sha256(), 0, None
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            announced = int(length) if length is not None else None
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
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


def ensure_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    offline: bool = False,
    fetch_command: str | None = None,
) -> Path:
    """Return ``dest`` if it is present and verified, else download it (unless ``offline``).

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
    return download(url, dest, sha256)
