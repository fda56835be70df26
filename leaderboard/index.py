"""The SQLite index of a board: a cache of its valid entry files, for tools that query the board.

It holds one row per valid entry (what the table shows, with the verification status the scan found)
and the raw per-task x per-seed scores. The board itself never reads it: ``show``, ``render`` and
``submit`` re-validate the entry files every time, so an edited index changes nothing they display.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import Any

INDEX_FILE = "index.sqlite"

SCHEMA = """
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
    status TEXT NOT NULL,
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
    "higher_is_better, iqm, iqm_low, iqm_high, mean, mean_low, mean_high, n_tasks, n_runs, status, "
    "submitted_at"
)


def algorithm_of(entry: dict[str, Any]) -> str:
    """The algorithm named by the entry's initialization card (``scratch`` without one;
    ``baseline: NAME`` for a trivial baseline)."""
    agent = entry["result"]["agent"]
    if agent.get("type") == "baseline":
        return f"baseline: {agent.get('name')}"
    card = entry["result"]["init"].get("card")
    return str(card["algorithm"]) if card else "scratch"


def entry_row(entry: dict[str, Any], status: str) -> tuple[Any, ...]:
    """The index row of a re-validated entry."""
    result, agg = entry["result"], entry["aggregates"]
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
        status,
        entry["submitted_at"],
    )


def score_rows(entry: dict[str, Any]) -> Iterable[tuple[str, str, int, float]]:
    """``(entry id, task, seed, score)`` of every run: the ranked score (normalised when it is)."""
    key = "normalized_final" if entry.get("raw_aggregates") else "final"
    for record in entry["result"]["records"]:
        yield entry["id"], str(record["task_id"]), int(record["seed"]), float(record[key])


def build_index(path: str | os.PathLike, entries: Iterable[tuple[dict[str, Any], str]]) -> None:
    """Write a fresh index at ``path`` (an empty or new file) from ``(entry, status)`` pairs."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.executescript(SCHEMA)
            marks = ", ".join("?" * len(COLUMNS.split(", ")))
            for entry, status in entries:
                con.execute(f"INSERT INTO entries ({COLUMNS}) VALUES ({marks})", entry_row(entry, status))
                con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", list(score_rows(entry)))
    finally:
        con.close()
