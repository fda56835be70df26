"""Ranked tables per protocol, from the index: what ``metaenvs board show`` prints and the page shows."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from leaderboard.aggregate import probability_of_improvement
from leaderboard.index import COLUMNS
from leaderboard.store import Board


@dataclass
class Ranked:
    """One protocol's entries, best first.

    Attributes:
        protocol_id: ``dist_id#name``.
        protocol_hash: The protocol's hash.
        dist_id: The distribution.
        score: What is ranked (the metric, or ``human_normalized``).
        higher_is_better: Direction of ``score``.
        rows: One dict per entry (index columns, plus ``rank`` and ``p_improve``: the probability that
            the entry improves on the next one down, or None for the last).
        scores: ``entry id -> task -> [score per seed]``, the raw scores.
    """

    protocol_id: str
    protocol_hash: str
    dist_id: str
    score: str
    higher_is_better: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def ranked_protocols(board: Board, dist_id: str | None = None) -> list[Ranked]:
    """Every protocol on the board (or of one distribution), its entries ranked by IQM.

    Ties in IQM are broken by the mean, then by the entry id, so the order is deterministic.
    """
    con = board.index()
    try:
        con.row_factory = sqlite3.Row
        query, params = f"SELECT {COLUMNS} FROM entries", ()
        if dist_id is not None:
            query, params = query + " WHERE dist_id = ?", (dist_id,)
        rows = [dict(r) for r in con.execute(query, params)]
        scores = _scores(con)
    finally:
        con.close()
    groups: dict[str, Ranked] = {}
    for row in rows:
        group = groups.setdefault(
            row["protocol_hash"],
            Ranked(
                row["protocol_id"],
                row["protocol_hash"],
                row["dist_id"],
                row["score"],
                bool(row["higher_is_better"]),
            ),
        )
        group.rows.append(row)
        group.scores[row["id"]] = scores.get(row["id"], {})
    out = sorted(groups.values(), key=lambda g: (g.protocol_id, g.protocol_hash))
    for group in out:
        _rank(group)
    return out


def _scores(con: sqlite3.Connection) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for entry_id, task, _seed, score in con.execute(
        "SELECT entry_id, task_id, seed, score FROM scores ORDER BY entry_id, task_id, seed"
    ):
        out.setdefault(entry_id, {}).setdefault(task, []).append(score)
    return out


def _rank(group: Ranked) -> None:
    sign = -1.0 if group.higher_is_better else 1.0
    group.rows.sort(key=lambda r: (sign * r["iqm"], sign * r["mean"], r["id"]))
    for i, row in enumerate(group.rows):
        row["rank"] = i + 1
        row["p_improve"] = None
        if i + 1 < len(group.rows):
            nxt = group.rows[i + 1]
            row["p_improve"] = probability_of_improvement(
                group.scores[row["id"]], group.scores[nxt["id"]], group.higher_is_better
            )


def verified_mark(row: dict[str, Any]) -> str:
    """``yes`` / ``NO`` / ``-`` (not verified yet)."""
    if row["verified"] is None:
        return "-"
    return "yes" if row["verified"] else "NO"


def _ci(est: float, low: float, high: float) -> str:
    return f"{est:.4g} [{low:.4g}, {high:.4g}]"


def format_tables(groups: list[Ranked]) -> str:
    """The terminal tables of ``metaenvs board show``."""
    if not groups:
        return "The board has no entries yet (add one with `metaenvs submit RESULT`)."
    blocks = []
    for g in groups:
        direction = "higher is better" if g.higher_is_better else "lower is better"
        head = (
            f"{g.protocol_id}  (protocol {g.protocol_hash[:12]}; {g.score}, {direction}; "
            "IQM and mean with 95% bootstrap CIs, see README)"
        )
        header = (
            "#",
            "algorithm",
            "submitter",
            "IQM [95% CI]",
            "mean [95% CI]",
            "P(>next)",
            "verified",
            "entry",
        )
        lines = [header]
        for r in g.rows:
            lines.append(
                (
                    str(r["rank"]),
                    _plain(r["algorithm"]),
                    _plain(r["submitter"] or ""),
                    _ci(r["iqm"], r["iqm_low"], r["iqm_high"]),
                    _ci(r["mean"], r["mean_low"], r["mean_high"]),
                    "" if r["p_improve"] is None else f"{r['p_improve']:.2f}",
                    verified_mark(r),
                    r["id"],
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        rows = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
        rows.insert(1, "  ".join("-" * w for w in widths))
        blocks.append("\n".join([head, *rows]))
    return "\n\n".join(blocks)


def _plain(text: str, limit: int = 40) -> str:
    """A submitted string made safe for a terminal: printable characters only, truncated."""
    clean = "".join(c if c.isprintable() else "?" for c in str(text))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."
