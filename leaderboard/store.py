"""The board on disk: one JSON file per entry, content-addressed initializations, verification records,
and an index that is only a cache.

Layout of a board folder::

    entries/<entry id>.json          one reviewable file per entry (16 hex digits, derived from hashes)
    inits/<sha256>.safetensors       the submitted initialization (sha256 of the file)
    inits/<sha256>.json              its card
    verifications/<entry id>.json    what `metaenvs board verify` re-ran, and its outcome
    index.sqlite                     a cache of the valid entries, rewritten by every submit and verify

Every file in a board is a claim: :meth:`Board.scan` re-validates every entry file with the submission
validator (and checks every verification record) each time the board is shown, rendered or written,
and sets aside ("quarantines") what fails, naming the file and the reason; one bad file never stops
the others. Nothing is ever read from the index. File names are derived from hashes only, never from
submitted strings. Every write is atomic and happens under an exclusive lock of the board folder,
after validation: a refused submission leaves the board exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.index import INDEX_FILE, build_index
from leaderboard.inits import MAX_INIT_BYTES
from leaderboard.recheck import ENTRY_VERSION, recheck_entry
from leaderboard.safeio import read_limited
from leaderboard.schema import parse_json
from leaderboard.validate import Submission
from leaderboard.verification import MAX_VERIFICATION_BYTES, UNVERIFIED, check_record
from metaenvs.errors import InvalidArgumentError, SubmissionError
from metaenvs.io import write_bytes_atomic, write_json_atomic

ENTRY_ID = re.compile(r"^[0-9a-f]{16}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
__all__ = ["MAX_INIT_BYTES", "Board", "BoardState", "StoredEntry", "check_entry_id", "utc_now"]


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
    """The stored form of a validated submission: the result without per-run curves (their summary is
    kept) and without the submitter's local init path, plus what the board recomputed."""
    result = {k: v for k, v in sub.result.items() if k != "records"}
    result["records"] = [{k: v for k, v in r.items() if k != "curve"} for r in sub.result["records"]]
    result["init"] = {k: v for k, v in result["init"].items() if k != "path"}
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
    }


@dataclass
class StoredEntry:
    """A re-validated entry and the status of its verification.

    Attributes:
        entry: The entry file's content.
        status: ``"verified"``, ``"FAILED"`` or ``"unverified"`` (see :mod:`leaderboard.verification`).
        verification: The verification record when it was consistent, else None.
    """

    entry: dict[str, Any]
    status: str = UNVERIFIED
    verification: dict[str, Any] | None = None


@dataclass
class BoardState:
    """What a scan of the board found: the valid entries, and every file set aside with the reason."""

    entries: dict[str, StoredEntry] = field(default_factory=dict)
    quarantined: list[tuple[str, str]] = field(default_factory=list)


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
    def verifications_dir(self) -> Path:
        return self.root / "verifications"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def entry_path(self, entry_id: str) -> Path:
        """Where entry ``entry_id`` lives (the id is checked, so the path stays inside the board)."""
        return self.entries_dir / f"{check_entry_id(entry_id)}.json"

    def init_path(self, sha256: str) -> Path:
        """Where the initialization with this (file) sha256 is stored."""
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise SubmissionError(f"{sha256!r} is not a sha256 (64 lower-case hex digits).")
        return self.inits_dir / f"{sha256}.safetensors"

    def verification_path(self, entry_id: str) -> Path:
        """Where the verification record of ``entry_id`` lives."""
        return self.verifications_dir / f"{check_entry_id(entry_id)}.json"

    # ----- reading -------------------------------------------------------------------
    def check_root(self, *, must_exist: bool) -> None:
        """Refuse a board path that is not a folder (a file, a dangling symbolic link).

        Raises:
            InvalidArgumentError: With the reason and the fix.
        """
        if os.path.islink(self.root) and not self.root.exists():
            raise InvalidArgumentError(
                f"The board {self.root} is a symbolic link to nothing; give --board DIR, a folder."
            )
        if self.root.exists() and not self.root.is_dir():
            raise InvalidArgumentError(f"The board {self.root} is not a folder; give --board DIR, a folder.")
        if must_exist and not self.root.exists():
            raise InvalidArgumentError(
                f"No board at {self.root}: give --board DIR, or add a first entry with `metaenvs submit`."
            )
        for sub in (self.entries_dir, self.inits_dir, self.verifications_dir):
            if os.path.lexists(sub) and (os.path.islink(sub) or not sub.is_dir()):
                raise InvalidArgumentError(
                    f"{sub} is not a folder (a file or a symbolic link); a board holds entries/, inits/ and "
                    "verifications/ as folders: move it away."
                )

    def entry_names(self) -> list[str]:
        """The names of every ``*.json`` in ``entries/``, whatever they are, sorted."""
        if not self.entries_dir.is_dir():
            return []
        try:
            return sorted(n for n in os.listdir(self.entries_dir) if n.endswith(".json"))
        except OSError as exc:
            raise InvalidArgumentError(f"{self.entries_dir} cannot be listed ({exc.strerror}).") from None

    def scan(self) -> BoardState:
        """Re-validate every entry file and verification record (see the module docstring)."""
        self.check_root(must_exist=False)
        state = BoardState()
        for name in self.entry_names():
            stem = name[: -len(".json")]
            if not ENTRY_ID.fullmatch(stem):
                state.quarantined.append((f"entries/{name}", "not named by an entry id (16 hex digits)"))
                continue
            try:
                entry = recheck_entry(self.entries_dir / name, self.inits_dir)
            except SubmissionError as exc:
                state.quarantined.append((f"entries/{name}", "; ".join(exc.problems)[:2000]))
                continue
            stored = StoredEntry(entry)
            self._attach_verification(stored, state)
            state.entries[stem] = stored
        return state

    def _attach_verification(self, stored: StoredEntry, state: BoardState) -> None:
        path = self.verification_path(stored.entry["id"])
        if not os.path.lexists(path):
            return
        where = f"verifications/{path.name}"
        try:
            record = parse_json(read_limited(path, MAX_VERIFICATION_BYTES, follow_symlinks=False), where)
        except SubmissionError as exc:
            state.quarantined.append((where, "; ".join(exc.problems)))
            return
        status, problem = check_record(stored.entry, record)
        if problem is not None:
            state.quarantined.append((where, f"{problem}; the entry shows as unverified"))
            return
        stored.status, stored.verification = status, record

    def resolve(self, entry_id: str) -> str:
        """The full id of an entry named by its id or a unique prefix of at least 6 hex digits."""
        if isinstance(entry_id, str) and re.fullmatch(r"[0-9a-f]{6,16}", entry_id):
            stems = [n[:-5] for n in self.entry_names() if ENTRY_ID.fullmatch(n[:-5])]
            matches = [s for s in stems if s.startswith(entry_id)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise SubmissionError(f"{entry_id!r} names {len(matches)} entries; give more digits.")
            raise SubmissionError(f"no entry {entry_id!r} in {self.root} (see `metaenvs board show`).")
        return check_entry_id(entry_id)

    def load_entry(self, entry_id: str) -> dict[str, Any]:
        """Read and re-validate one entry.

        Raises:
            SubmissionError: No such entry, or the file fails re-validation (the reason is named).
        """
        self.check_root(must_exist=True)
        path = self.entry_path(self.resolve(entry_id))
        if not os.path.lexists(path):
            raise SubmissionError(f"no entry {entry_id!r} in {self.root} (see `metaenvs board show`).")
        return recheck_entry(path, self.inits_dir)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the board folder (one writer at a time)."""
        self.check_root(must_exist=False)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ----- writing -------------------------------------------------------------------
    def add(self, sub: Submission, command: str | None = None) -> Path:
        """Store a validated submission (and its initialization) as a new entry.

        Raises:
            SubmissionError: On a duplicate (same initialization tensors and protocol), or a board whose
                files block the write (the board is left unchanged).
        """
        self.check_root(must_exist=False)
        self._check_writable()
        document = entry_document(sub, command)
        path = self.entry_path(sub.entry_id)
        with self.locked():
            state = self.scan()
            if os.path.lexists(path):
                raise self._duplicate(sub, state)
            created = self._store_init(sub, state) if sub.init_bytes is not None else []
            try:
                write_json_atomic(path, document)
                state.entries[sub.entry_id] = StoredEntry(document)
                self.write_index(state)
            except BaseException:
                for p in [path, *created]:
                    p.unlink(missing_ok=True)
                raise
        return path

    def set_verification(self, entry_id: str, record: dict[str, Any]) -> Path:
        """Write the verification record of ``entry_id`` (atomically) and refresh the index."""
        path = self.verification_path(entry_id)
        self._check_writable()
        with self.locked():
            write_json_atomic(path, record)
            self.write_index(self.scan())
        return path

    def _check_writable(self) -> None:
        if os.path.lexists(self.index_path) and not stat.S_ISREG(os.lstat(self.index_path).st_mode):
            raise SubmissionError(
                f"{self.index_path} is not a regular file (a folder or a link); it is only a cache of "
                "entries/: remove it and submit again."
            )

    def _duplicate(self, sub: Submission, state: BoardState) -> SubmissionError:
        where = f"entries/{sub.entry_id}.json"
        bad = [reason for name, reason in state.quarantined if name == where]
        if bad:
            return SubmissionError(
                f"{where} exists but fails re-validation ({bad[0][:300]}); a maintainer must remove it first."
            )
        what = (
            "training from scratch"
            if sub.init_key == "scratch"
            else sub.init_key
            if sub.init_key.startswith("baseline:")
            else f"initialization {sub.init_key[:16]}..."
        )
        return SubmissionError(
            f"duplicate: entry {sub.entry_id} already holds {what} under protocol "
            f"{sub.result['protocol_id']}; one entry per initialization (its tensors) and protocol."
        )

    def _store_init(self, sub: Submission, state: BoardState) -> list[Path]:
        """Store the initialization and its card; an existing copy is kept, and its card replaced only
        when no valid entry uses it (a card records what the file was trained for, per entry)."""
        sha = sub.result["init"]["sha256"]
        target = self.init_path(sha)
        card = target.with_suffix(".json")
        new_card = sub.result["init"]["card"]
        if not os.path.lexists(target):
            write_json_atomic(card, new_card)
            write_bytes_atomic(target, sub.init_bytes or b"")
            return [target, card]
        try:
            same = read_limited(target, MAX_INIT_BYTES, follow_symlinks=False) == sub.init_bytes
            old_card = parse_json(read_limited(card, MAX_INIT_BYTES, follow_symlinks=False), str(card))
        except SubmissionError:
            same, old_card = False, None
        if not same:
            raise SubmissionError(
                f"{target} exists but is not this initialization; a maintainer must check it."
            )
        if old_card != new_card:
            users = [
                s.entry["id"] for s in state.entries.values() if s.entry["result"]["init"]["sha256"] == sha
            ]
            if users:
                raise SubmissionError(
                    f"inits/{sha}.json, the card stored with this initialization for entries {users}, is not "
                    "the card this result was evaluated with; submit the result with the stored card."
                )
            write_json_atomic(card, new_card)
        return []

    # ----- index ---------------------------------------------------------------------
    def write_index(self, state: BoardState) -> Path:
        """Rewrite ``index.sqlite`` from the valid entries of ``state`` (a cache; never read back)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=self.root)
        os.close(fd)
        try:
            build_index(tmp, [(s.entry, s.status) for s in state.entries.values()])
            os.replace(tmp, self.index_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.index_path

    def rebuild_index(self) -> Path:
        """Rebuild the index from the entry files (re-validating every entry)."""
        self._check_writable()
        with self.locked():
            return self.write_index(self.scan())
