"""The board on disk: one JSON file per entry, content-addressed initializations, a rebuildable index.

Layout of a board folder::

    entries/<entry id>.json          one reviewable file per entry (16 hex digits, derived from hashes)
    inits/<sha256>.safetensors       the submitted initialization, when one was given
    inits/<sha256>.json              its card
    index.sqlite                     derived from entries/*.json; rebuilt whenever it is stale

File names are derived from hashes only, never from submitted strings. Every write is atomic and
happens under an exclusive lock of the board folder, after validation: a refused submission leaves
the board exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leaderboard.index import INDEX_FILE, build_index, index_fingerprint, insert_entry, read_fingerprint
from leaderboard.schema import read_json_limited
from leaderboard.validate import Submission
from metaenvs.errors import CheckpointError, InvalidArgumentError, SubmissionError
from metaenvs.io import atomic_path, load_safetensors, write_bytes_atomic, write_json_atomic

ENTRY_VERSION = 1
ENTRY_ID = re.compile(r"^[0-9a-f]{16}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_INIT_BYTES = 256 * 1024 * 1024
"""Largest initialization file accepted with a submission (256 MiB)."""


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def check_entry_id(entry_id: str) -> str:
    """Return ``entry_id`` if it is 16 lower-case hex digits, else refuse it (ids are never paths)."""
    if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id):
        raise SubmissionError(
            f"{entry_id!r} is not an entry id: ids are 16 lower-case hex digits (see `metaenvs board show`)."
        )
    return entry_id


def entry_document(sub: Submission, submit_command: str | None = None) -> dict[str, Any]:
    """The stored form of a validated submission: the result without per-run curves, plus what the
    board recomputed (aggregates, summarised curves) and room for a verification."""
    result = {k: v for k, v in sub.result.items() if k != "records"}
    result["records"] = [{k: v for k, v in r.items() if k != "curve"} for r in sub.result["records"]]
    if result["init"].get("path") is not None:
        result["init"] = {k: v for k, v in result["init"].items() if k != "path"}  # a local path
    return {
        "entry_version": ENTRY_VERSION,
        "id": sub.entry_id,
        "init_key": sub.init_key,
        "submitted_at": utc_now(),
        "submit_command": submit_command,
        "result_sha256": sub.result_sha256,
        "result": result,
        "aggregates": sub.aggregates,
        "raw_aggregates": sub.raw_aggregates,
        "curves": sub.curves,
        "verification": None,
    }


class Board:
    """A leaderboard folder (see the module docstring).

    Args:
        root: The folder; created on the first successful submission.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def inits_dir(self) -> Path:
        return self.root / "inits"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def entry_path(self, entry_id: str) -> Path:
        """Where entry ``entry_id`` lives (the id is checked, so the path stays inside the board)."""
        return self.entries_dir / f"{check_entry_id(entry_id)}.json"

    def init_path(self, sha256: str) -> Path:
        """Where the initialization with this sha256 is stored."""
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise SubmissionError(f"{sha256!r} is not a sha256 (64 lower-case hex digits).")
        return self.inits_dir / f"{sha256}.safetensors"

    def entry_files(self) -> list[Path]:
        """Every entry file, sorted by name."""
        if not self.entries_dir.is_dir():
            return []
        return sorted(p for p in self.entries_dir.glob("*.json") if ENTRY_ID.fullmatch(p.stem))

    def resolve(self, entry_id: str) -> str:
        """The full id of an entry named by its id or a unique prefix of at least 6 hex digits."""
        if isinstance(entry_id, str) and re.fullmatch(r"[0-9a-f]{6,16}", entry_id):
            matches = [p.stem for p in self.entry_files() if p.stem.startswith(entry_id)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise SubmissionError(f"{entry_id!r} names {len(matches)} entries; give more digits.")
            raise SubmissionError(f"no entry {entry_id!r} in {self.root} (see `metaenvs board show`).")
        return check_entry_id(entry_id)

    def load_entry(self, entry_id: str) -> dict[str, Any]:
        """Read one entry file."""
        path = self.entry_path(self.resolve(entry_id))
        if not path.is_file():
            raise SubmissionError(f"no entry {entry_id!r} in {self.root} (see `metaenvs board show`).")
        return read_json_limited(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the board folder (one writer at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ----- writing -------------------------------------------------------------------
    def add(
        self, sub: Submission, init_file: str | os.PathLike | None = None, command: str | None = None
    ) -> Path:
        """Store a validated submission (and its initialization, if given) as a new entry.

        Raises:
            SubmissionError: On a duplicate (same initialization and protocol), or an initialization
                file that is not safetensors, too large, or not the one the result names.
        """
        init_bytes = self._checked_init(sub, init_file) if init_file is not None else None
        path = self.entry_path(sub.entry_id)
        if path.exists():
            raise self._duplicate(sub)
        document = entry_document(sub, command)
        with self.locked():
            if path.exists():
                raise self._duplicate(sub)
            before = index_fingerprint(self.entry_files())
            created = self._store_init(sub, init_bytes) if init_bytes is not None else []
            try:
                write_json_atomic(path, document)
                self._update_index(before, document)
            except BaseException:
                for p in [path, *created]:
                    p.unlink(missing_ok=True)
                raise
        return path

    def set_verification(self, entry_id: str, verification: dict[str, Any]) -> Path:
        """Record the outcome of ``metaenvs board verify`` in an entry (atomically) and refresh the index."""
        path = self.entry_path(self.resolve(entry_id))
        with self.locked():
            entry = read_json_limited(path)
            before = index_fingerprint(self.entry_files())
            entry["verification"] = verification
            write_json_atomic(path, entry)
            self._update_index(before, entry)
        return path

    def _duplicate(self, sub: Submission) -> SubmissionError:
        what = (
            "training from scratch" if sub.init_key == "scratch" else f"initialization {sub.init_key[:16]}..."
        )
        return SubmissionError(
            f"duplicate: entry {sub.entry_id} already holds {what} under protocol "
            f"{sub.result['protocol_id']}; one entry per initialization and protocol."
        )

    def _checked_init(self, sub: Submission, init_file: str | os.PathLike) -> bytes:
        path = Path(init_file)
        if sub.init_key == "scratch":
            raise SubmissionError(
                "--init was given but the result was evaluated from scratch (no initialization)."
            )
        if not path.is_file():
            raise SubmissionError(f"{path}: no such initialization file.")
        if path.stat().st_size > MAX_INIT_BYTES:
            raise SubmissionError(f"{path}: over the initialization size limit of {MAX_INIT_BYTES} bytes.")
        try:
            load_safetensors(path)
        except CheckpointError as exc:
            raise SubmissionError(f"init: {exc}") from exc
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sub.init_key:
            raise SubmissionError(
                f"init: sha256 of {path} is {digest} but the result was evaluated from {sub.init_key}; "
                "submit the initialization the result names."
            )
        return data

    def _store_init(self, sub: Submission, data: bytes) -> list[Path]:
        target = self.init_path(sub.init_key)
        if target.exists():
            return []
        card = target.with_suffix(".json")
        write_json_atomic(card, sub.result["init"]["card"])
        write_bytes_atomic(target, data)
        return [target, card]

    # ----- index ---------------------------------------------------------------------
    def _update_index(self, before: str, entry: dict[str, Any]) -> None:
        files = self.entry_files()
        if self.index_path.exists() and read_fingerprint(self.index_path) == before:
            with atomic_path(self.index_path) as tmp:
                shutil.copyfile(self.index_path, tmp)
                insert_entry(tmp, entry, index_fingerprint(files))
        else:
            self._rebuild(files)

    def _rebuild(self, files: list[Path]) -> None:
        entries = [self._checked_entry(p) for p in files]
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=self.root)
        os.close(fd)
        try:
            build_index(tmp, entries, index_fingerprint(files))
            os.replace(tmp, self.index_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _checked_entry(self, path: Path) -> dict[str, Any]:
        from leaderboard.recheck import recheck_entry

        entry = read_json_limited(path)
        recheck_entry(entry, path.stem)
        return entry

    def index(self) -> sqlite3.Connection:
        """A read-only connection to the index, rebuilt first if it is missing or stale."""
        if not self.root.is_dir():
            raise InvalidArgumentError(
                f"No board at {self.root}: give --board DIR, or add a first entry with `metaenvs submit`."
            )
        files = self.entry_files()
        if not self.index_path.exists() or read_fingerprint(self.index_path) != index_fingerprint(files):
            with self.locked():
                files = self.entry_files()
                self._rebuild(files)
        return sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True)

    def rebuild_index(self) -> Path:
        """Rebuild the index from the entry files (re-checking every entry)."""
        with self.locked():
            self._rebuild(self.entry_files())
        return self.index_path
