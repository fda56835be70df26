"""Re-check a stored entry file: entry files arrive through pull requests and hand edits, so each one is
a claim. An entry is accepted only if its stored result passes the submission validator
(:func:`leaderboard.validate.validate_result`, ``stored=True``) with the board's stored copy of its
initialization, its id follows from the hashes, and what the board recomputed (aggregates, the
curve summary's shape) is what it stores.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from leaderboard.aggregate import MAX_CURVE_POINTS
from leaderboard.inits import MAX_INIT_BYTES
from leaderboard.safeio import read_limited
from leaderboard.schema import MAX_RESULT_BYTES, non_finite_paths, parse_json
from leaderboard.validate import validate_result
from metaenvs.errors import SubmissionError
from metaenvs.metrics import SCORE_RANGES

ENTRY_VERSION = 2
MAX_ENTRY_BYTES = MAX_RESULT_BYTES
MAX_CARD_BYTES = 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ENTRY_FIELDS = {
    "entry_version",
    "id",
    "init_key",
    "submitted_at",
    "submit_command",
    "result_sha256",
    "result",
    "aggregates",
    "raw_aggregates",
    "curves",
}
CURVE_FIELDS = {"x_unit", "y_name", "steps", "mean", "q25", "q75", "n_runs"}


def recheck_entry(path: Path, inits_dir: Path) -> dict[str, Any]:
    """Read and re-validate one entry file.

    Args:
        path: ``entries/<id>.json`` (read without following symbolic links, size-limited).
        inits_dir: The board's ``inits/`` (the stored initialization is re-checked with the entry).

    Returns:
        The entry.

    Raises:
        SubmissionError: One line per problem, each naming the file.
    """
    where = f"entries/{path.name}"
    try:
        entry = parse_json(read_limited(path, MAX_ENTRY_BYTES, follow_symlinks=False), where)
        problems = _problems(entry, path.stem, inits_dir)
    except SubmissionError as exc:
        problems = exc.problems
    if problems:
        raise SubmissionError([p if p.startswith(where) else f"{where}: {p}" for p in problems])
    return entry


def _problems(entry: Any, stem: str, inits_dir: Path) -> list[str]:
    if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
        return [f"an entry has exactly the fields {sorted(ENTRY_FIELDS)}."]
    if entry["entry_version"] != ENTRY_VERSION:
        return [f"entry_version {entry['entry_version']!r} is not {ENTRY_VERSION}; re-submit the result."]
    problems = _field_problems(entry)
    if problems:
        return problems
    result = entry["result"]
    try:
        init = _stored_init(result, inits_dir)
        sub = validate_result(result, entry["result_sha256"], init=init, stored=True)
    except SubmissionError as exc:
        return [f"result: {p}" for p in exc.problems]
    if entry["init_key"] != sub.init_key:
        problems.append("init_key is not the canonical sha256 of the stored initialization's tensors.")
    if entry["id"] != sub.entry_id or stem != sub.entry_id:
        problems.append(
            f"the id of this protocol and initialization is {sub.entry_id}, not {entry['id']} / {stem}."
        )
    if not _same(sub.aggregates, entry["aggregates"]) or not _same(
        sub.raw_aggregates, entry["raw_aggregates"]
    ):
        problems.append(
            "the stored aggregates are not those of its raw scores (edited by hand?); the board recomputes "
            "them: re-submit the result instead of editing the entry."
        )
    return problems + _curve_problems(entry["curves"], result)


def _field_problems(entry: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(entry["id"], str) or not isinstance(entry["init_key"], str):
        problems.append("id and init_key are strings.")
    if not isinstance(entry["result_sha256"], str) or not SHA256.fullmatch(entry["result_sha256"]):
        problems.append("result_sha256 is not a sha256.")
    if not isinstance(entry["submitted_at"], str) or len(entry["submitted_at"]) > 40:
        problems.append("submitted_at is not a time stamp.")
    command = entry["submit_command"]
    if command is not None and (
        not isinstance(command, str) or len(command) > 4000 or not command.isprintable()
    ):
        problems.append("submit_command is not a printable command line.")
    if not isinstance(entry["result"], dict):
        problems.append("result is not an object.")
    bad = [p for p in non_finite_paths(entry) if not p.startswith("result/")]
    if bad:
        problems.append(f"{bad[0]}: NaN or Inf.")
    return problems


def _stored_init(result: dict[str, Any], inits_dir: Path) -> bytes | None:
    """The board's copy of the entry's initialization (and a check that its stored card is the entry's)."""
    init = result.get("init")
    if not isinstance(init, dict) or init.get("kind") != "file":
        return None
    sha = init.get("sha256")
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        return None  # the validator names it
    raw = read_limited(inits_dir / f"{sha}.safetensors", MAX_INIT_BYTES, follow_symlinks=False)
    card = parse_json(read_limited(inits_dir / f"{sha}.json", MAX_CARD_BYTES, follow_symlinks=False), "card")
    if card != init.get("card"):
        raise SubmissionError(
            f"inits/{sha}.json: the stored card is not the card the entry was evaluated with."
        )
    return raw


def _curve_problems(curves: Any, result: dict[str, Any]) -> list[str]:
    if not isinstance(curves, dict) or set(curves) != CURVE_FIELDS:
        return [f"curves has exactly the fields {sorted(CURVE_FIELDS)}."]
    y_name = "episode_return" if result["compute"]["budget_unit"] == "timesteps" else "train_loss"
    x_unit = "timestep" if y_name == "episode_return" else "inner_step"
    lists = [curves[k] for k in ("steps", "mean", "q25", "q75")]
    ok = all(
        isinstance(v, list) and 0 < len(v) <= MAX_CURVE_POINTS and all(isinstance(x, (int, float)) for x in v)
        for v in lists
    )
    if not ok or len({len(v) for v in lists}) != 1:
        return [f"curves: steps, mean, q25, q75 are lists of 1 to {MAX_CURVE_POINTS} numbers of one length."]
    low, high = SCORE_RANGES[y_name]
    problems = []
    if curves["x_unit"] != x_unit or curves["y_name"] != y_name:
        problems.append(f"curves: x_unit and y_name are {x_unit!r} and {y_name!r} under this protocol.")
    if curves["n_runs"] != len(result["records"]):
        problems.append("curves: n_runs is not the number of runs.")
    values = [x for v in lists[1:] for x in v]
    if not all(math.isfinite(x) and low <= x <= high for x in values):
        problems.append(f"curves: values outside the valid range [{low:g}, {high:g}] of {y_name}.")
    if any(a > b for a, b in zip(curves["q25"], curves["q75"], strict=True)):
        problems.append("curves: q25 above q75.")
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b
