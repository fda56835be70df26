"""The data catalogue: every data set's canonical files, their checksums and where they go.

A data set is found in the data folder (see :func:`metaenvs.data.data_dir`) in one of two
forms, and the first one present wins:

1. **canonical**: the files exactly as their publishers serve them, under
   ``<data_dir>/<name>/`` (for example ``<data_dir>/omniglot/images_background.zip``);
2. **compact**: our single ``.npz`` (no pickle) at ``<data_dir>/<compact name>``, the layout
   of the shared test folder. Readers give identical arrays from both forms.

If neither is there, the canonical files are downloaded (unless ``METAENVS_OFFLINE=1``),
each verified against its sha256. Where no publisher or independent record of a file's
sha256 exists, the catalogue says so and verifies what it can: the md5 the publisher (or
torchvision) gives, and the sha256 of archive members that we could hash ourselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metaenvs.data.download import ENV_VAR, data_dir, download
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.io import sha256_file

OFFLINE_VAR = "METAENVS_OFFLINE"


@dataclass(frozen=True)
class RemoteFile:
    """One canonical file.

    Attributes:
        filename: Name under ``<data_dir>/<dataset>/``.
        url: Canonical download URL.
        sha256: Expected sha256 of the whole file, or ``None`` where none is on record.
        size: Size in bytes, where known.
        md5: Publisher's md5, checked when no sha256 is on record.
        members: ``member path -> sha256`` of archive members, checked after download.
        source: Where the checksum comes from.
    """

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None
    md5: str | None = None
    members: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class DatasetEntry:
    """A data set of the catalogue.

    Attributes:
        name: Short name used by ``metaenvs data fetch NAME``.
        title: Human-readable name and citation hint.
        files: The canonical files.
        compact: File name of our compact ``.npz`` form, if there is one.
        compact_sha256: sha256 of the reference compact file, if it is a published build.
        terms: Licence or terms of use, in one line.
    """

    name: str
    title: str
    files: tuple[RemoteFile, ...]
    compact: str | None = None
    compact_sha256: str | None = None
    terms: str = ""


@dataclass(frozen=True)
class Located:
    """Where a data set was found: ``form`` is ``"canonical"`` or ``"compact"``."""

    name: str
    form: str
    paths: dict[str, Path]


CATALOG: dict[str, DatasetEntry] = {}


def add(entry: DatasetEntry) -> DatasetEntry:
    """Add (or replace) a catalogue entry; tests use this to pin generated files."""
    CATALOG[entry.name] = entry
    return entry


def entry(name: str) -> DatasetEntry:
    """The catalogue entry ``name``, with the known names in the error."""
    from metaenvs.data import sources  # noqa: F401  (fills the catalogue)

    if name not in CATALOG:
        raise InvalidArgumentError(
            f"Unknown data set {name!r}. Known data sets: {', '.join(sorted(CATALOG))}."
        )
    return CATALOG[name]


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _member_problems(path: Path, members: Mapping[str, str]) -> list[str]:
    problems = []
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for member, expected in members.items():
                if member not in names:
                    problems.append(f"member {member} is missing")
                    continue
                got = hashlib.sha256(zf.read(member)).hexdigest()
                if got != expected:
                    problems.append(f"member {member} has sha256 {got}, expected {expected}")
    except zipfile.BadZipFile as exc:
        problems.append(f"not a readable zip ({exc})")
    return problems


def _stamp(path: Path) -> Path:
    return path.parent / f".{path.name}.verified"


def file_problems(path: Path, remote: RemoteFile) -> list[str]:
    """Why ``path`` is not a good copy of ``remote`` (an empty list if it is).

    A successful check is remembered in a stamp file keyed by size and mtime, so large
    files are hashed once, not at every load.
    """
    if not path.is_file():
        return ["missing"]
    stat = path.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}:{remote.sha256}:{remote.md5}"
    stamp = _stamp(path)
    if stamp.is_file() and stamp.read_text() == key:
        return []
    problems = []
    if remote.size is not None and stat.st_size != remote.size:
        problems.append(f"size {stat.st_size} bytes, expected {remote.size}")
    elif remote.sha256 is not None:
        got = sha256_file(path)
        if got != remote.sha256:
            problems.append(f"sha256 {got}, expected {remote.sha256}")
    elif remote.md5 is not None:
        got = _md5(path)
        if got != remote.md5:
            problems.append(f"md5 {got}, expected {remote.md5}")
    if not problems and remote.members:
        problems = _member_problems(path, remote.members)
    if not problems:
        with contextlib.suppress(OSError):  # a read-only data folder: verify again next time
            stamp.write_text(key)
    return problems


def _compact_ok(path: Path, ds: DatasetEntry) -> bool:
    return path.is_file() and (ds.compact_sha256 is None or sha256_file(path) == ds.compact_sha256)


def canonical_paths(name: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Where the canonical files of ``name`` belong in the data folder."""
    ds = entry(name)
    base = data_dir(root) / ds.name
    return {f.filename: base / f.filename for f in ds.files}


def fetch_command(name: str) -> str:
    return f"metaenvs data fetch {name}"


def _missing_message(ds: DatasetEntry, root: Path, problems: dict[str, list[str]]) -> str:
    lines = [f"Data set {ds.name!r} ({ds.title}) is not usable in {root}:"]
    for f in ds.files:
        state = "; ".join(problems.get(f.filename, [])) or "ok"
        lines.append(f"  - {root / ds.name / f.filename}: {state}. Download {f.url}")
    if ds.compact:
        lines.append(f"  (or our compact form {root / ds.compact})")
    lines.append(
        f"Fetch it with `{fetch_command(ds.name)}`, put the files where listed, "
        f"or set {ENV_VAR} to a folder that holds them."
    )
    return "\n".join(lines)


def locate(name: str, root: str | os.PathLike | None = None, download_missing: bool | None = None) -> Located:
    """Find data set ``name``, downloading its canonical files if needed and allowed.

    Args:
        name: Catalogue name (``metaenvs data verify`` lists them).
        root: Data folder; defaults to :func:`metaenvs.data.data_dir`.
        download_missing: Download what is missing; defaults to true unless ``METAENVS_OFFLINE=1``.

    Raises:
        DataError: If the data set is neither present nor downloadable; the message names each
            file, its URL, where it goes and the command that fetches it.
    """
    ds = entry(name)
    folder = data_dir(root)
    paths = canonical_paths(name, folder)
    problems = {f.filename: file_problems(paths[f.filename], f) for f in ds.files}
    if not any(problems.values()):
        return Located(name, "canonical", paths)
    if ds.compact and _compact_ok(folder / ds.compact, ds):
        return Located(name, "compact", {ds.compact: folder / ds.compact})
    if download_missing is None:
        download_missing = os.environ.get(OFFLINE_VAR, "") not in ("1", "true", "yes")
    if not download_missing:
        raise DataError(_missing_message(ds, folder, problems))
    return Located(name, "canonical", fetch(name, folder))


def has_checksum(remote: RemoteFile) -> bool:
    """Whether anything about ``remote`` can be verified (sha256, md5 or member hashes)."""
    return bool(remote.sha256 or remote.md5 or remote.members)


def fetch(
    name: str, root: str | os.PathLike | None = None, allow_unverified: bool = False
) -> dict[str, Path]:
    """Download every canonical file of ``name`` that is missing or corrupt, and verify it.

    Args:
        name: Catalogue name.
        root: Data folder.
        allow_unverified: Also download files for which no checksum is on record (their sha256
            is then in the returned paths' ``.sha256`` side files, to compare by hand).

    Raises:
        DataError: If a download fails or a file does not match its checksums, or has no
            checksum on record and ``allow_unverified`` is false; nothing unverified is left.
    """
    ds = entry(name)
    paths = canonical_paths(name, root)
    for remote in ds.files:
        path = paths[remote.filename]
        if not file_problems(path, remote):
            continue
        if not has_checksum(remote) and not allow_unverified:
            raise DataError(
                f"No checksum is on record for {remote.url} ({remote.source or 'none published'}), so a "
                f"download could not be verified. Download it yourself and place it at {path}, or run "
                f"`{fetch_command(name)} --allow-unverified` to download it and print its sha256."
            )
        try:
            download(remote.url, path, remote.sha256)
        except DataError as exc:
            state = {f.filename: file_problems(paths[f.filename], f) for f in ds.files}
            raise DataError(f"{exc}\n{_missing_message(ds, data_dir(root), state)}") from exc
        if not has_checksum(remote):
            path.with_name(path.name + ".sha256").write_text(f"{sha256_file(path)}  {path.name}\n")
        problems = file_problems(path, remote)
        if problems:
            path.unlink(missing_ok=True)
            raise DataError(
                f"{remote.url} downloaded but failed verification ({'; '.join(problems)}); it was "
                f"removed. The publisher may have changed the file: report it, or place a good copy "
                f"at {path}."
            )
    return paths


def verify(root: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """Check every catalogue data set in the data folder.

    Returns:
        ``name -> {"form": canonical|compact|missing, "detail": ...}``.
    """
    from metaenvs.data import sources  # noqa: F401

    folder = data_dir(root)
    report: dict[str, dict[str, str]] = {}
    for name in sorted(CATALOG):
        ds = CATALOG[name]
        paths = canonical_paths(name, folder)
        problems = {f.filename: file_problems(paths[f.filename], f) for f in ds.files}
        if not any(problems.values()):
            report[name] = {"form": "canonical", "detail": f"{len(ds.files)} file(s) verified"}
        elif ds.compact and _compact_ok(folder / ds.compact, ds):
            report[name] = {"form": "compact", "detail": str(folder / ds.compact)}
        else:
            bad = [f"{k}: {'; '.join(v)}" for k, v in problems.items() if v and v != ["missing"]]
            detail = "; ".join(bad) if bad else "not present"
            report[name] = {"form": "corrupt" if bad else "missing", "detail": detail}
    return report
