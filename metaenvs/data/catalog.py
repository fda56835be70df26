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

from metaenvs.data import integrity
from metaenvs.data.download import ENV_VAR, data_dir, download, missing_parents
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
                got = hashlib.sha256(integrity.read_member(zf, member)).hexdigest()
                if got != expected:
                    problems.append(f"member {member} has sha256 {got}, expected {expected}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        problems.append(f"not a readable zip ({exc})")
    return problems


def _expectation(remote: RemoteFile) -> str:
    members = ",".join(f"{k}={v}" for k, v in sorted(remote.members.items()))
    return f"size={remote.size};sha256={remote.sha256};md5={remote.md5};members={members}"


def file_problems(path: Path, remote: RemoteFile, rehash: bool = False) -> list[str]:
    """Why ``path`` is not a good copy of ``remote`` (an empty list if it is).

    A successful check is remembered in a stamp (see :mod:`metaenvs.data.integrity`) that records
    the file's sha256, size, mtime, ctime and inode, so large files are hashed once, not at every
    load; any change to the file makes it hashed again.

    Args:
        path: The file.
        remote: What it should be.
        rehash: Ignore the stamp and hash the file again (``metaenvs data verify`` does).

    Returns:
        ``["missing"]`` if nothing is at ``path``; otherwise one line per problem, each naming the
        expected and the actual value.
    """
    if not os.path.lexists(path):
        return ["missing"]
    try:
        st = integrity.regular_file(path, limit=1 << 62)
    except DataError as exc:
        return [str(exc)]
    expected = _expectation(remote)
    if not rehash:
        stamped = integrity.stamped_sha256(path, st, expected)
        if stamped is not None and (remote.sha256 is None or stamped == remote.sha256):
            return []
    try:
        got, st, started = integrity.hash_file(path)
    except OSError as exc:
        return [f"not readable ({exc.strerror or exc})"]
    problems = []
    if remote.size is not None and st.st_size != remote.size:
        problems.append(f"size {st.st_size} bytes, expected {remote.size}")
    if remote.sha256 is not None:
        if got != remote.sha256:
            problems.append(f"sha256 {got}, expected {remote.sha256}")
    elif remote.md5 is not None and not problems:
        md5 = _md5(path)
        if md5 != remote.md5:
            problems.append(f"md5 {md5}, expected {remote.md5} (sha256 {got})")
    if not problems and remote.members:
        problems = _member_problems(path, remote.members)
    if not problems:
        integrity.write_stamp(path, got, st, started, expected)
    return problems


def _compact_problems(path: Path, ds: DatasetEntry, rehash: bool = False) -> list[str]:
    """Why the compact file ``path`` of ``ds`` is not usable (``["missing"]`` if absent)."""
    remote = RemoteFile(path.name, "", sha256=ds.compact_sha256)
    return file_problems(path, remote, rehash=rehash)


def _compact_ok(path: Path, ds: DatasetEntry) -> bool:
    return not _compact_problems(path, ds)


def canonical_paths(name: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Where the canonical files of ``name`` belong in the data folder."""
    ds = entry(name)
    base = data_dir(root) / ds.name
    return {f.filename: base / f.filename for f in ds.files}


def fetch_command(name: str) -> str:
    return f"metaenvs data fetch {name}"


def _missing_message(
    ds: DatasetEntry, root: Path, problems: dict[str, list[str]], compact: list[str] | None = None
) -> str:
    lines = [f"Data set {ds.name!r} ({ds.title}) is not usable in {root}:"]
    for f in ds.files:
        state = "; ".join(problems.get(f.filename, [])) or "ok"
        lines.append(f"  - {root / ds.name / f.filename}: {state}. Download {f.url}")
    if ds.compact:
        state = "" if not compact or compact == ["missing"] else f", which is corrupt: {'; '.join(compact)}"
        lines.append(f"  (or our compact form {root / ds.compact}{state})")
    lines.append(
        f"Fetch it with `{fetch_command(ds.name)}`, put the files where listed, "
        f"or set {ENV_VAR} to a folder that holds them."
    )
    return "\n".join(lines)


def _offline() -> bool:
    return os.environ.get(OFFLINE_VAR, "").strip().lower() in ("1", "true", "yes")


def locate(name: str, root: str | os.PathLike | None = None, download_missing: bool | None = None) -> Located:
    """Find data set ``name``, downloading its canonical files if needed and allowed.

    Reading creates nothing: no folder is made unless a download is attempted, and a failed
    download removes the folders it made.

    Args:
        name: Catalogue name (``metaenvs data verify`` lists them).
        root: Data folder; defaults to :func:`metaenvs.data.data_dir`.
        download_missing: Download what is missing; defaults to true unless ``METAENVS_OFFLINE=1``.

    Raises:
        DataError: If the data set is neither present nor downloadable; the message names each
            file, its state, its URL, where it goes and the command that fetches it.
    """
    ds = entry(name)
    folder = data_dir(root)
    paths = canonical_paths(name, folder)
    problems = {f.filename: file_problems(paths[f.filename], f) for f in ds.files}
    if not any(problems.values()):
        return Located(name, "canonical", paths)
    compact = _compact_problems(folder / ds.compact, ds) if ds.compact else None
    if ds.compact and not compact:
        return Located(name, "compact", {ds.compact: folder / ds.compact})
    if download_missing is None:
        download_missing = not _offline()
    if not download_missing:
        raise DataError(_missing_message(ds, folder, problems, compact))
    return Located(name, "canonical", fetch(name, folder))


def has_checksum(remote: RemoteFile) -> bool:
    """Whether anything about ``remote`` can be verified (sha256, md5 or member hashes)."""
    return bool(remote.sha256 or remote.md5 or remote.members)


def fetch(
    name: str,
    root: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    deadline: float | None = None,
) -> dict[str, Path]:
    """Download every canonical file of ``name`` that is missing or corrupt, and verify it.

    Each download is capped at the catalogue's size for the file and must finish within
    ``deadline`` seconds (see :func:`metaenvs.data.download.download`).

    Args:
        name: Catalogue name.
        root: Data folder.
        allow_unverified: Also download files for which no checksum is on record (their sha256
            is then in the returned paths' ``.sha256`` side files, to compare by hand).
        deadline: Wall-clock limit per file, in seconds; defaults to ``METAENVS_DOWNLOAD_DEADLINE``.

    Raises:
        DataError: If a download fails or a file does not match its checksums, or has no
            checksum on record and ``allow_unverified`` is false; nothing unverified is left,
            and no empty folder either.
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
        made = missing_parents(path)
        try:
            download(remote.url, path, remote.sha256, max_bytes=remote.size, deadline=deadline)
            if not has_checksum(remote):
                path.with_name(path.name + ".sha256").write_text(f"{sha256_file(path)}  {path.name}\n")
            problems = file_problems(path, remote, rehash=True)
            if problems:
                path.unlink(missing_ok=True)
                raise DataError(
                    f"{remote.url} downloaded but failed verification ({'; '.join(problems)}); it was "
                    f"removed. The publisher may have changed the file: report it, or place a good copy "
                    f"at {path}."
                )
        except DataError as exc:
            for folder in made:  # deepest first; a folder something else wrote into stays
                with contextlib.suppress(OSError):
                    folder.rmdir()
            if "failed verification" in str(exc):
                raise
            state = {f.filename: file_problems(paths[f.filename], f) for f in ds.files}
            raise DataError(f"{exc}\n{_missing_message(ds, data_dir(root), state)}") from exc
    return paths


def _report_line(path: Path, problems: list[str], name: str) -> str:
    return f"{path}: {'; '.join(problems)}; get a good copy with `{fetch_command(name)}`"


def verify(root: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """Check every catalogue data set in the data folder, hashing every present file again.

    Returns:
        ``name -> {"form": canonical|compact|corrupt|missing, "detail": ...}``. ``corrupt`` means
        a file is present but fails its checks (the detail names each such file, its expected
        and actual sha256 and the fetch command), even when another form is usable.
    """
    from metaenvs.data import sources  # noqa: F401

    folder = data_dir(root)
    report: dict[str, dict[str, str]] = {}
    for name in sorted(CATALOG):
        ds = CATALOG[name]
        paths = canonical_paths(name, folder)
        problems = {f.filename: file_problems(paths[f.filename], f, rehash=True) for f in ds.files}
        compact = _compact_problems(folder / ds.compact, ds, rehash=True) if ds.compact else ["missing"]
        bad = [_report_line(paths[k], v, name) for k, v in problems.items() if v and v != ["missing"]]
        if compact != ["missing"] and compact:
            bad.append(_report_line(folder / ds.compact, compact, name))
        if bad:
            usable = (
                " (the canonical files are usable)"
                if not any(problems.values())
                else " (the compact form is usable)"
                if not compact
                else ""
            )
            report[name] = {"form": "corrupt", "detail": " | ".join(bad) + usable}
        elif not any(problems.values()):
            report[name] = {"form": "canonical", "detail": f"{len(ds.files)} file(s) verified"}
        elif not compact:
            report[name] = {"form": "compact", "detail": str(folder / ds.compact)}
        else:
            report[name] = {
                "form": "missing",
                "detail": f"not present; fetch it with `{fetch_command(name)}`",
            }
    return report
