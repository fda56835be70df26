"""Leaderboard: result schema, validated submissions, recomputed aggregates, rendered board, verification.

``leaderboard`` reads result files and protocols and never trains, except :func:`verify_entry`, which
re-runs an entry's evaluation through the public API.

    from leaderboard import Board, submit, render_board, verify_entry
    entry = submit("result.json", "leaderboard/board", init="runs/reptile/init.safetensors")
"""

from __future__ import annotations

import os
from pathlib import Path

from leaderboard.inits import MAX_INIT_BYTES
from leaderboard.ranking import RankedBoard, format_tables, ranked_protocols
from leaderboard.render import render_board
from leaderboard.schema import MAX_RESULT_BYTES, read_json_limited, result_schema
from leaderboard.store import Board
from leaderboard.validate import Submission, load_submission, validate_result
from leaderboard.verify import verify_entry

BOARD_ENV = "METAENVS_BOARD"


def default_board() -> Path:
    """The board folder used when none is given: ``$METAENVS_BOARD``, else ``leaderboard/board`` of this
    package (the repository's board, with an editable install)."""
    return Path(os.environ.get(BOARD_ENV) or Path(__file__).resolve().parent / "board")


def submit(
    result: str | os.PathLike,
    board: str | os.PathLike | Board | None = None,
    *,
    init: str | os.PathLike | None = None,
    command: str | None = None,
) -> Submission:
    """Validate a result file, recompute its aggregates and store it as a new board entry.

    Args:
        result: The JSON written by ``metaenvs evaluate --out``.
        board: The board folder (default :func:`default_board`).
        init: The initialization the result was evaluated from (required when the result names one);
            checked against the protocol's model and stored with the entry so that ``metaenvs board
            verify`` can re-run it (its sha256 must be the result's).
        command: The submit command, recorded in the entry.

    Returns:
        The validated :class:`Submission` (``entry_id``, recomputed ``aggregates``).

    Raises:
        metaenvs.errors.SubmissionError: With one line per problem (schema, recipe, scores, init, ...
            at once); the board is left unchanged.
        metaenvs.errors.InvalidArgumentError: The board path is not a folder.
    """
    board = board if isinstance(board, Board) else Board(board or default_board())
    board.check_root(must_exist=False)
    sub = load_submission(result, init=init)
    board.add(sub, command)
    return sub


__all__ = [
    "MAX_INIT_BYTES",
    "MAX_RESULT_BYTES",
    "Board",
    "RankedBoard",
    "Submission",
    "default_board",
    "format_tables",
    "load_submission",
    "ranked_protocols",
    "read_json_limited",
    "render_board",
    "result_schema",
    "submit",
    "validate_result",
    "verify_entry",
]
