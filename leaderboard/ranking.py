"""Ranked tables per protocol, from the re-validated entry files: what ``metaenvs board show`` prints
and the page shows.

Entries whose verification FAILED (a consistent ``board verify`` record whose re-run disagrees with the
submitted scores) are not ranked: they are listed below the ranked table of their protocol. Entries
never verified are ranked and marked ``unverified``. Files that fail re-validation are listed under
"quarantined", with the reason, and take no part in any table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leaderboard.index import algorithm_of
from leaderboard.store import Board, BoardState, StoredEntry
from leaderboard.verification import FAILED, VERIFIED
from metaenvs.aggregates import by_task, probability_of_improvement


@dataclass
class Ranked:
    """One protocol's entries, best first.

    Attributes:
        protocol_id: ``dist_id#name``.
        protocol_hash: The protocol's hash.
        dist_id: The distribution.
        score: What is ranked (the metric, or ``human_normalized``).
        higher_is_better: Direction of ``score``.
        rows: One dict per ranked entry (``id``, ``algorithm``, ``submitter``, ``code_url``, ``iqm``,
            ``iqm_low``, ... , ``n_runs``, ``status``, plus ``rank`` and ``p_improve``: the probability that
            the entry improves on the next one down, or None for the last).
        failed: Entries whose verification failed (not ranked; ``rank`` is None), same keys.
        scores: ``entry id -> task -> [score per seed]``, the raw scores (ranked and failed entries).
        entries: ``entry id -> entry`` (the re-validated files).
    """

    protocol_id: str
    protocol_hash: str
    dist_id: str
    score: str
    higher_is_better: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)


class RankedBoard(list):
    """The list of :class:`Ranked` protocols of a board, with ``quarantined``: ``(file, reason)`` of
    every file that failed re-validation (shown by :func:`format_tables` and on the page)."""

    def __init__(self, groups: list[Ranked], quarantined: list[tuple[str, str]]) -> None:
        super().__init__(groups)
        self.quarantined = list(quarantined)


def row_of(stored: StoredEntry) -> dict[str, Any]:
    """The table row of a re-validated entry."""
    entry = stored.entry
    result, agg = entry["result"], entry["aggregates"]
    v = stored.verification or {}
    return {
        "id": entry["id"],
        "dist_id": result["dist_id"],
        "protocol_id": result["protocol_id"],
        "protocol_hash": result["protocol_hash"],
        "init_key": entry["init_key"],
        "algorithm": algorithm_of(entry),
        "submitter": result.get("submitter"),
        "code_url": result.get("code_url"),
        "score": agg["score"],
        "higher_is_better": bool(agg["higher_is_better"]),
        **{stat: agg[stat]["estimate"] for stat in ("iqm", "mean")},
        **{f"{stat}_low": agg[stat]["low"] for stat in ("iqm", "mean")},
        **{f"{stat}_high": agg[stat]["high"] for stat in ("iqm", "mean")},
        "n_tasks": agg["n_tasks"],
        "n_runs": agg["n_runs"],
        "status": stored.status,
        "verify_max_abs_diff": v.get("max_abs_diff"),
        "submitted_at": entry["submitted_at"],
        "rank": None,
        "p_improve": None,
    }


def ranked_protocols(
    board: Board, dist_id: str | None = None, state: BoardState | None = None
) -> RankedBoard:
    """Every protocol on the board (or of one distribution), its entries ranked by IQM.

    Every entry file is re-validated first (:meth:`Board.scan`). Ties in IQM are broken by the mean,
    then by the entry id, so the order is deterministic.

    Raises:
        InvalidArgumentError: The board path is missing or not a folder.
    """
    board.check_root(must_exist=True)
    state = board.scan() if state is None else state
    groups: dict[str, Ranked] = {}
    for stored in state.entries.values():
        row = row_of(stored)
        if dist_id is not None and row["dist_id"] != dist_id:
            continue
        group = groups.setdefault(
            row["protocol_hash"],
            Ranked(
                row["protocol_id"],
                row["protocol_hash"],
                row["dist_id"],
                row["score"],
                row["higher_is_better"],
            ),
        )
        (group.failed if stored.status == FAILED else group.rows).append(row)
        key = "normalized_final" if stored.entry["raw_aggregates"] else "final"
        group.scores[row["id"]] = by_task(stored.entry["result"]["records"], key)
        group.entries[row["id"]] = stored.entry
    out = sorted(groups.values(), key=lambda g: (g.protocol_id, g.protocol_hash))
    for group in out:
        _rank(group)
    return RankedBoard(out, state.quarantined)


def _rank(group: Ranked) -> None:
    sign = -1.0 if group.higher_is_better else 1.0
    order = lambda r: (sign * r["iqm"], sign * r["mean"], r["id"])  # noqa: E731
    group.rows.sort(key=order)
    group.failed.sort(key=order)
    for i, row in enumerate(group.rows):
        row["rank"] = i + 1
        if i + 1 < len(group.rows):
            nxt = group.rows[i + 1]
            row["p_improve"] = probability_of_improvement(
                group.scores[row["id"]], group.scores[nxt["id"]], group.higher_is_better
            )


def verified_mark(row: dict[str, Any]) -> str:
    """``yes`` (a consistent verification reproduced it), ``FAILED`` (the re-run disagrees) or
    ``unverified`` (never verified, or its verification record was set aside)."""
    return {VERIFIED: "yes", FAILED: "FAILED"}.get(row["status"], "unverified")


def _ci(est: float, low: float, high: float) -> str:
    return f"{est:.4g} [{low:.4g}, {high:.4g}]"


HEADER = ("#", "algorithm", "submitter", "IQM [95% CI]", "mean [95% CI]", "P(>next)", "verified", "entry")


def _line(r: dict[str, Any]) -> tuple[str, ...]:
    return (
        "-" if r["rank"] is None else str(r["rank"]),
        _plain(r["algorithm"]),
        _plain(r["submitter"] or ""),
        _ci(r["iqm"], r["iqm_low"], r["iqm_high"]),
        _ci(r["mean"], r["mean_low"], r["mean_high"]),
        "" if r["p_improve"] is None else f"{r['p_improve']:.2f}",
        verified_mark(r),
        r["id"],
    )


def format_tables(groups: list[Ranked]) -> str:
    """The terminal tables of ``metaenvs board show``: per protocol the ranked entries, then those whose
    verification failed (not ranked), then every quarantined file with the reason."""
    quarantined = getattr(groups, "quarantined", [])
    blocks = []
    if not groups:
        blocks.append("The board has no entries yet (add one with `metaenvs submit RESULT`).")
    for g in groups:
        direction = "higher is better" if g.higher_is_better else "lower is better"
        head = (
            f"{g.protocol_id}  (protocol {g.protocol_hash[:12]}; {g.score}, {direction}; "
            "IQM and mean with 95% bootstrap CIs, see README)"
        )
        lines = [HEADER, *(_line(r) for r in g.rows)]
        if g.failed:
            lines.append(("failed verification (re-run disagrees; not ranked):", *[""] * (len(HEADER) - 1)))
            lines += [_line(r) for r in g.failed]
        widths = [
            max(len(line[i]) for line in lines if not line[0].startswith("failed"))
            for i in range(len(HEADER))
        ]
        rows = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
        rows.insert(1, "  ".join("-" * w for w in widths))
        blocks.append("\n".join([head, *rows]))
    if quarantined:
        lines = [f"quarantined ({len(quarantined)} files set aside, not shown above):"]
        lines += [f"  {_plain(name, 80)}: {_plain(reason, 400)}" for name, reason in quarantined]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _plain(text: str, limit: int = 40) -> str:
    """A submitted string made safe for a terminal: printable characters only, truncated."""
    clean = "".join(c if c.isprintable() else "?" for c in str(text))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."
