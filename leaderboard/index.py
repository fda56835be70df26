"""The SQLite index of a board: a cache of the entry files, rebuildable from them at any time.

It holds one row per entry (what the table shows) and the raw per-task x per-seed scores (what the
probability of improvement is computed from), plus the fingerprint of the entry files it was built
from, so a stale index is noticed and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

INDEX_FILE = "index.sqlite"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    id TEXT PRIMARY KEY,
    dist_id TEXT NOT NULL,
    protocol_id TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    init_key TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    submitter TEXT,
    code_url TEXT,
    score TEXT NOT NULL,
    higher_is_better INTEGER NOT NULL,
    iqm REAL NOT NULL, iqm_low REAL NOT NULL, iqm_high REAL NOT NULL,
    mean REAL NOT NULL, mean_low REAL NOT NULL, mean_high REAL NOT NULL,
    n_tasks INTEGER NOT NULL, n_runs INTEGER NOT NULL,
    verified INTEGER,
    verify_max_abs_diff REAL,
    submitted_at TEXT NOT NULL,
    UNIQUE (protocol_hash, init_key)
);
CREATE TABLE scores (
    entry_id TEXT NOT NULL REFERENCES entries(id),
    task_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (entry_id, task_id, seed)
);
"""

COLUMNS = (
    "id, dist_id, protocol_id, protocol_hash, init_key, algorithm, submitter, code_url, score, "
    "higher_is_better, iqm, iqm_low, iqm_high, mean, mean_low, mean_high, n_tasks, n_runs, verified, "
    "verify_max_abs_diff, submitted_at"
)


def index_fingerprint(files: Sequence[Path]) -> str:
    """sha256 over the names and contents of the entry files (changes whenever any entry changes)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_fingerprint(path: str | os.PathLike) -> str | None:
    """The fingerprint an index was built from, or None if it cannot be read."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        con.close()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def algorithm_of(entry: dict[str, Any]) -> str:
    """The algorithm named by the entry's initialization card (``scratch`` without one)."""
    card = entry["result"]["init"].get("card")
    return str(card["algorithm"]) if card else "scratch"


def entry_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    """The index row of an entry (aggregates as stored, which the rebuild has re-checked)."""
    result, agg = entry["result"], entry["aggregates"]
    verification = entry.get("verification") or {}
    verified = verification.get("verified")
    return (
        entry["id"],
        result["dist_id"],
        result["protocol_id"],
        result["protocol_hash"],
        entry["init_key"],
        algorithm_of(entry),
        result.get("submitter"),
        result.get("code_url"),
        agg["score"],
        int(agg["higher_is_better"]),
        agg["iqm"]["estimate"],
        agg["iqm"]["low"],
        agg["iqm"]["high"],
        agg["mean"]["estimate"],
        agg["mean"]["low"],
        agg["mean"]["high"],
        agg["n_tasks"],
        agg["n_runs"],
        None if verified is None else int(bool(verified)),
        verification.get("max_abs_diff"),
        entry["submitted_at"],
    )


def score_rows(entry: dict[str, Any]) -> Iterable[tuple[str, str, int, float]]:
    """``(entry id, task, seed, score)`` of every run: the ranked score (normalised when it is)."""
    key = "normalized_final" if entry.get("raw_aggregates") else "final"
    for record in entry["result"]["records"]:
        yield entry["id"], str(record["task_id"]), int(record["seed"]), float(record[key])


def _insert(con: sqlite3.Connection, entry: dict[str, Any]) -> None:
    con.execute("DELETE FROM scores WHERE entry_id = ?", (entry["id"],))
    con.execute("DELETE FROM entries WHERE id = ?", (entry["id"],))
    marks = ", ".join("?" * len(COLUMNS.split(", ")))
    con.execute(f"INSERT INTO entries ({COLUMNS}) VALUES ({marks})", entry_row(entry))
    con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", list(score_rows(entry)))


def build_index(path: str | os.PathLike, entries: Iterable[dict[str, Any]], fingerprint: str) -> None:
    """Write a fresh index at ``path`` (an empty or new file) holding ``entries``."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.executescript(SCHEMA)
            for entry in entries:
                _insert(con, entry)
            con.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
    finally:
        con.close()


def insert_entry(path: str | os.PathLike, entry: dict[str, Any], fingerprint: str) -> None:
    """Add or replace one entry in an existing index file and record the new fingerprint."""
    con = sqlite3.connect(path)
    try:
        with con:
            _insert(con, entry)
            con.execute("UPDATE meta SET value = ? WHERE key = 'fingerprint'", (fingerprint,))
    finally:
        con.close()
