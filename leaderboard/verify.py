"""Verify an entry by re-running its evaluation from the submitted initialization.

The entry is re-validated first (a quarantined file is refused). The initialization is the board's
stored copy (or a file given by hand); its sha256 must be the one the entry was evaluated from. The
evaluation runs under the entry's protocol, which must still be the installed suite's official one,
and every run's final score is compared with the submitted one. The outcome is written as a separate
record, ``verifications/<entry id>.json`` (:mod:`leaderboard.verification`): the submitted entry file
is never edited.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

from leaderboard.store import Board, utc_now
from leaderboard.validate import OFFICIAL_DIST_SEED, recompute_aggregates
from leaderboard.verification import make_record
from metaenvs.errors import SubmissionError
from metaenvs.io import sha256_file

__all__ = ["verify_entry"]


def verify_entry(
    board: Board,
    entry_id: str,
    init_file: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Re-run an entry's evaluation and record whether it reproduces.

    Args:
        board: The board holding the entry.
        entry_id: Its id (or a unique prefix of at least 6 hex digits).
        init_file: The initialization to use instead of the board's stored copy (its sha256 is checked).
        progress: Show a progress bar.
        command: The command that asked for the verification (recorded); default the equivalent
            ``metaenvs board verify`` command line.

    Returns:
        The verification record written to ``verifications/<id>.json``: ``verified``, ``runs_compared``,
        ``runs_differing``, ``max_abs_diff``, the submitted and re-run IQM, the re-run's raw scores and
        their sha256, tolerances, versions, hardware, the command and wall time.

    Raises:
        SubmissionError: If the entry fails re-validation, the initialization is missing or is not the
            one the entry names, or the installed suite's protocol is no longer the entry's.
    """
    import metaenvs
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    board.check_root(must_exist=True)
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
    import torch

    init = _initialization(board, entry, init_file)
    if result["agent"].get("type") == "baseline":  # validated: a baseline defined for this distribution
        from baselines.trivial import make_baseline

        agent = make_baseline(result["agent"]["name"], dist)
    else:
        agent = make_agent(dist, seed=0, **execution_settings(result))
    threads = torch.get_num_threads()
    recorded = result.get("hardware", {}).get("torch_threads")
    t0 = time.perf_counter()
    try:  # an RL run's thread count: its trajectories amplify a different summation order
        # RL only: supervised re-runs are compared within measured tolerances across thread counts
        if dist.kind == "rl" and isinstance(recorded, int) and 0 < recorded <= (os.cpu_count() or 1):
            torch.set_num_threads(recorded)
        rerun = evaluate(agent, dist, init, protocol, progress=progress)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    records = rerun.to_dict()["records"]
    wanted = {(r["task_id"], r["seed"]) for r in result["records"]}
    compared = [r for r in records if (r["task_id"], r["seed"]) in wanted]
    rerun_agg = recompute_aggregates(compared, protocol)[0] if compared else None
    if command is None:
        command = shlex.join(
            ["metaenvs", "board", "verify", entry_id, "--board", str(board.root)]
            + ([] if init_file is None else ["--init", str(init_file)])
        )
    record = make_record(
        entry,
        records,
        iqm_rerun=None if rerun_agg is None else float(rerun_agg["iqm"]["estimate"]),
        verified_at=utc_now(),
        wall_seconds=float(wall),
        versions=rerun.versions,
        hardware=rerun.hardware,
        command=command,
        rerun={
            "dist_id": dist.id,
            "protocol_id": protocol.id,
            "protocol_hash": protocol.hash,
            "split_hash": dist.split_hash(),
            "init_sha256": result["init"]["sha256"],
            "seeds": list(protocol.seeds),
        },
    )
    board.set_verification(entry_id, record)
    return record


def execution_settings(result: dict[str, Any]) -> dict[str, Any]:
    """The recorded agent settings that change how a run executes but not its recipe (channels-last,
    compiled, batched, vector env; the device where this machine has it): a re-run uses the submitted
    run's, since a different memory layout or kernel changes float rounding, which RL amplifies."""
    import torch

    from metaenvs.protocol import EXECUTION_KEYS

    agent = result.get("agent", {})
    settings = {k: agent[k] for k in sorted(EXECUTION_KEYS) if k in agent and k != "device"}
    device = agent.get("device")
    if isinstance(device, str) and (
        device == "cpu" or (device.startswith("cuda") and torch.cuda.is_available())
    ):
        settings["device"] = device
    return settings


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
