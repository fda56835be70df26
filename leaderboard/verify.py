"""Verify an entry by re-running its evaluation from the submitted initialization.

The initialization is the board's stored copy (or a file given by hand); its sha256 must be the one the
entry was evaluated from. The evaluation runs under the entry's protocol, which must still be the
installed suite's official one, and every run's final score is compared with the submitted one.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from leaderboard.store import Board, utc_now
from leaderboard.validate import OFFICIAL_DIST_SEED, recompute_aggregates
from metaenvs.errors import SubmissionError
from metaenvs.io import sha256_file

RTOL = 1e-5
ATOL = 1e-6


def verify_entry(
    board: Board,
    entry_id: str,
    init_file: str | os.PathLike | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    progress: bool = False,
) -> dict[str, Any]:
    """Re-run an entry's evaluation and record in the entry whether it reproduces.

    Args:
        board: The board holding the entry.
        entry_id: Its id (or a unique prefix of at least 6 hex digits).
        init_file: The initialization to use instead of the board's stored copy (its sha256 is checked).
        rtol: Relative tolerance on each run's final score.
        atol: Absolute tolerance on each run's final score.
        progress: Show a progress bar.

    Returns:
        The verification record written into the entry: ``verified``, ``max_abs_diff``, the submitted
        and re-run IQM, the number of runs that differ, versions, hardware and wall time.

    Raises:
        SubmissionError: If the initialization is missing or is not the one the entry names, or the
            installed suite's protocol is no longer the entry's.
    """
    import metaenvs
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    entry_id = board.resolve(entry_id)
    entry = board.load_entry(entry_id)
    result = entry["result"]
    dist = metaenvs.make(result["dist_id"], seed=OFFICIAL_DIST_SEED)
    protocol = dist.protocol
    if protocol.hash != result["protocol_hash"]:
        raise SubmissionError(
            f"entry {entry_id} was measured under protocol {result['protocol_hash'][:16]}... but the "
            f"installed suite's {protocol.id} is {protocol.hash[:16]}...; verify with the suite version "
            f"it names ({result['suite_version']})."
        )
    init = _initialization(board, entry, init_file)
    agent = make_agent(dist, seed=0)
    t0 = time.perf_counter()
    rerun = evaluate(agent, dist, init, protocol, progress=progress)
    wall = time.perf_counter() - t0
    verification = _compare(entry, rerun.to_dict(), protocol, rtol, atol)
    verification.update(
        {
            "verified_at": utc_now(),
            "wall_seconds": wall,
            "versions": rerun.versions,
            "hardware": rerun.hardware,
            "rtol": rtol,
            "atol": atol,
        }
    )
    board.set_verification(entry_id, verification)
    return verification


def _initialization(board: Board, entry: dict[str, Any], init_file: str | os.PathLike | None) -> Any:
    sha = entry["result"]["init"]["sha256"]
    if sha is None:
        if init_file is not None:
            raise SubmissionError("this entry trained from scratch; it takes no --init.")
        return None
    path = Path(init_file) if init_file is not None else board.init_path(sha)
    if not path.is_file():
        raise SubmissionError(
            f"the initialization {sha[:16]}... of entry {entry['id']} is not in {board.inits_dir}; pass it "
            "with --init FILE (its sha256 is checked)."
        )
    actual = sha256_file(path)
    if actual != sha:
        raise SubmissionError(
            f"sha256 of {path} is {actual}, but entry {entry['id']} was evaluated from {sha}."
        )
    return path  # evaluate() loads it with its card, checking the sha256 again and refusing pickles


def _compare(
    entry: dict[str, Any], rerun: dict[str, Any], protocol: Any, rtol: float, atol: float
) -> dict[str, Any]:
    submitted = {(r["task_id"], r["seed"]): float(r["final"]) for r in entry["result"]["records"]}
    again = {(r["task_id"], r["seed"]): float(r["final"]) for r in rerun["records"]}
    common = sorted(set(submitted) & set(again))
    diffs = [abs(submitted[k] - again[k]) for k in common]
    off = [k for k in common if not math.isclose(submitted[k], again[k], rel_tol=rtol, abs_tol=atol)]
    records = [{**r, "normalized_final": r.get("normalized_final")} for r in rerun["records"]]
    rerun_agg, _ = recompute_aggregates(
        [r for r in records if (r["task_id"], r["seed"]) in submitted], protocol
    )
    iqm_submitted = entry["aggregates"]["iqm"]["estimate"]
    iqm_rerun = rerun_agg["iqm"]["estimate"]
    return {
        "verified": not off and len(common) == len(submitted),
        "runs_compared": len(common),
        "runs_differing": len(off),
        "max_abs_diff": max(diffs) if diffs else None,
        "iqm_submitted": iqm_submitted,
        "iqm_rerun": iqm_rerun,
        "iqm_diff": iqm_rerun - iqm_submitted,
        "first_differing": [
            {"task_id": t, "seed": s, "submitted": submitted[(t, s)], "rerun": again[(t, s)]}
            for t, s in off[:5]
        ],
    }
