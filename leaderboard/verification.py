"""Verification records: what ``metaenvs board verify`` re-ran, and how the board checks such a record.

A verification is a separate file, ``verifications/<entry id>.json``, written only by
:func:`leaderboard.verify_entry`; the submitted entry file is never edited. It lists the re-run's raw
score of every task x seed and their sha256, the entry it verifies (id, sha256 of the submitted
result, sha256 of the entry's raw scores), the tolerances, versions, hardware and command.

``show`` and ``render`` never take a record's word for it: :func:`check_record` recomputes the
comparison from the scores the record lists, with the board's tolerances. A record that does not
belong to the entry, or whose claims do not follow from its own scores, is set aside (the entry shows
as unverified, and the record is named with the reason); a consistent record whose re-run disagrees
with the entry marks the entry FAILED.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metaenvs.protocol import Protocol, sha256_json


def tolerance(entry: Mapping[str, Any]) -> dict[str, float]:
    """The entry's protocol's ``verify_tolerance`` (by its metric): ``rtol``, ``atol``,
    ``unstable_fraction`` and ``iqm_rtol``."""
    return Protocol.from_dict(entry["result"]["protocol"]).verify_tolerance


VERIFICATION_VERSION = 2
"""2: the protocol's tolerance, with unstable runs allowed up to a fraction and an IQM tolerance."""
MAX_VERIFICATION_BYTES = 16 * 1024 * 1024
VERIFIED, FAILED, UNVERIFIED = "verified", "FAILED", "unverified"

FIELDS = {
    "verification_version": int,
    "entry_id": str,
    "result_sha256": str,
    "entry_scores_sha256": str,
    "rerun_scores_sha256": str,
    "rerun_scores": list,
    "verified": bool,
    "runs_compared": int,
    "runs_differing": int,
    "max_abs_diff": (float, type(None)),
    "first_differing": list,
    "iqm_submitted": float,
    "iqm_rerun": (float, type(None)),
    "iqm_diff": (float, type(None)),
    "rtol": float,
    "atol": float,
    "unstable_fraction": float,
    "iqm_rtol": float,
    "verified_at": str,
    "wall_seconds": float,
    "versions": dict,
    "hardware": dict,
    "command": str,
    "rerun": dict,
}


def score_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """``[task_id, seed, final]`` of every run, sorted: what a verification compares and hashes."""
    return sorted([str(r["task_id"]), int(r["seed"]), float(r["final"])] for r in records)


def compare(entry_rows: list[list[Any]], rerun_rows: list[list[Any]], tol: Mapping[str, float]) -> dict:
    """How the re-run's scores agree with the entry's: run by run, and in their IQM.

    Verified when both cover the same runs, at most ``unstable_fraction`` of the runs fall outside
    ``rtol`` / ``atol``, and the re-run's IQM is within ``iqm_rtol`` of the entry's.
    """
    from metaenvs.aggregates import iqm

    submitted = {(t, s): v for t, s, v in entry_rows}
    again = {(t, s): v for t, s, v in rerun_rows}
    common = sorted(set(submitted) & set(again))
    diffs = [abs(submitted[k] - again[k]) for k in common]
    off = [
        k
        for k in common
        if not math.isclose(submitted[k], again[k], rel_tol=tol["rtol"], abs_tol=tol["atol"])
    ]
    same_runs = set(submitted) == set(again) and bool(common)
    iqm_ok = False
    if same_runs:
        a, b = float(iqm([submitted[k] for k in common])), float(iqm([again[k] for k in common]))
        iqm_ok = math.isclose(a, b, rel_tol=tol["iqm_rtol"], abs_tol=tol["atol"])
    return {
        "verified": same_runs and len(off) <= math.floor(tol["unstable_fraction"] * len(common)) and iqm_ok,
        "runs_compared": len(common),
        "runs_differing": len(off) + len(set(submitted) ^ set(again)),
        "max_abs_diff": max(diffs) if diffs else None,
        "first_differing": [
            {"task_id": t, "seed": s, "submitted": submitted[(t, s)], "rerun": again[(t, s)]}
            for t, s in off[:5]
        ],
    }


def make_record(entry: Mapping[str, Any], rerun_records: Sequence[Mapping[str, Any]], **facts: Any) -> dict:
    """The verification record of ``entry`` from the re-run's records.

    Args:
        entry: The (re-validated) entry.
        rerun_records: The re-run's records.
        **facts: ``iqm_rerun``, ``verified_at``, ``wall_seconds``, ``versions``, ``hardware``, ``command``
            and ``rerun`` (what was re-run: distribution, protocol, split, initialization, seeds).
    """
    entry_rows, rerun_rows = score_rows(entry["result"]["records"]), score_rows(rerun_records)
    tol = tolerance(entry)
    iqm_submitted = float(entry["aggregates"]["iqm"]["estimate"])
    iqm_rerun = facts.pop("iqm_rerun")
    return {
        "verification_version": VERIFICATION_VERSION,
        "entry_id": entry["id"],
        "result_sha256": entry["result_sha256"],
        "entry_scores_sha256": sha256_json(entry_rows),
        "rerun_scores_sha256": sha256_json(rerun_rows),
        "rerun_scores": rerun_rows,
        **compare(entry_rows, rerun_rows, tol),
        "iqm_submitted": iqm_submitted,
        "iqm_rerun": iqm_rerun,
        "iqm_diff": None if iqm_rerun is None else iqm_rerun - iqm_submitted,
        **{k: float(tol[k]) for k in ("rtol", "atol", "unstable_fraction", "iqm_rtol")},
        **facts,
    }


def _rows_problem(rows: Any) -> str | None:
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 3
            and isinstance(row[0], str)
            and isinstance(row[1], int)
            and not isinstance(row[1], bool)
            and isinstance(row[2], float)
            and math.isfinite(row[2])
        ):
            return f"rerun_scores holds {str(row)[:60]}, not [task_id, seed, finite float score]"
    return None


def check_record(entry: Mapping[str, Any], record: Any) -> tuple[str, str | None]:
    """``(status, problem)`` of an entry given its verification record.

    Returns:
        ``("verified", None)`` or ``("FAILED", None)`` for a consistent record whose re-run agrees
        (disagrees) with the entry within the protocol's ``verify_tolerance``; ``("unverified", why)`` for a
        record that does not belong to this entry or whose claims do not follow from its own scores.
    """
    if not isinstance(record, dict) or set(record) != set(FIELDS):
        return UNVERIFIED, f"a verification record has exactly the fields {sorted(FIELDS)}"
    for name, kind in FIELDS.items():
        value = record[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            return UNVERIFIED, f"{name} is not of type {getattr(kind, '__name__', kind)}"
    if record["verification_version"] != VERIFICATION_VERSION:
        return (
            UNVERIFIED,
            f"verification_version {record['verification_version']} is not {VERIFICATION_VERSION}",
        )
    result = entry["result"]
    entry_rows = score_rows(result["records"])
    tol = tolerance(entry)
    mismatch = [
        name
        for name, expected in (
            ("entry_id", entry["id"]),
            ("result_sha256", entry["result_sha256"]),
            ("entry_scores_sha256", sha256_json(entry_rows)),
            *((k, float(tol[k])) for k in ("rtol", "atol", "unstable_fraction", "iqm_rtol")),
        )
        if record[name] != expected
    ]
    rerun = record["rerun"]
    if (
        rerun.get("protocol_hash") != result["protocol_hash"]
        or rerun.get("init_sha256") != result["init"]["sha256"]
    ):
        mismatch.append("rerun (protocol or initialization)")
    if mismatch:
        return (
            UNVERIFIED,
            f"it does not verify this entry ({', '.join(mismatch)} differ): a stale or foreign record",
        )
    problem = _rows_problem(record["rerun_scores"])
    if problem:
        return UNVERIFIED, problem
    rows = record["rerun_scores"]
    if sha256_json(rows) != record["rerun_scores_sha256"]:
        return UNVERIFIED, "rerun_scores_sha256 is not the sha256 of the re-run scores it lists"
    recomputed = compare(entry_rows, rows, tol)
    claimed = {k: record[k] for k in recomputed}
    if claimed != recomputed:
        wrong = sorted(k for k in recomputed if claimed[k] != recomputed[k])
        return UNVERIFIED, f"its claims ({', '.join(wrong)}) do not follow from the re-run scores it lists"
    return (VERIFIED if recomputed["verified"] else FAILED), None
