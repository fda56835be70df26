"""The ``metaenvs`` commands that read and write the leaderboard and the data folder, and the checks
and tables ``evaluate`` shares with them (lazy imports: see :mod:`metaenvs.cli`)."""

from __future__ import annotations

import argparse
import sys

from metaenvs.cli_args import command_line
from metaenvs.errors import InvalidArgumentError


def _check_submission_fields(submitter: str | None, code_url: str | None, commands: list[str]) -> None:
    """Refuse, before anything runs, the submission fields the result schema would refuse at submit."""
    import jsonschema

    from leaderboard.schema import result_schema

    schema = result_schema()
    problems = []
    for name, value in (("submitter", submitter), ("code_url", code_url), ("commands", commands)):
        if value is None or (name == "commands" and not value):
            continue
        field = {**schema["properties"][name], "$defs": schema.get("$defs", {})}
        for error in jsonschema.Draft202012Validator(field).iter_errors(value):
            shown = value if len(str(value)) <= 80 else str(value)[:77] + "..."
            problems.append(f"--{name.replace('_', '-')} {shown!r}: {error.message[:160]}")
    if problems:
        raise InvalidArgumentError(
            "these values would be refused at submit, so nothing was run: "
            + "; ".join(problems)
            + " (--code-url takes an http(s) link; names take no control characters)."
        )


MAX_TASK_ROWS = 20
"""Results with at most this many held-out tasks print one row per task."""


def _per_task_table(rows: list[dict], protocol: object) -> str:
    """Per-task raw scores (mean and range over seeds) and the normalised score where there is one."""
    from metaenvs.evaluation import format_score

    normalised = getattr(protocol, "normalisation", None)
    header = f"{'task':<28} {'seeds':>5} {'raw ' + protocol.metric + ' mean [min, max]':>36}"
    header += f" {normalised + '-normalised':>18}" if normalised else ""
    lines = [header, "-" * len(header)]
    for row in rows:
        raw = f"{format_score(row['mean'])} [{format_score(row['min'])}, {format_score(row['max'])}]"
        line = f"{row['task_id']:<28} {row['seeds']:>5} {raw:>36}"
        if normalised:
            value = row["normalized_mean"]
            line += f" {'n/a' if value is None else format_score(value):>18}"
        lines.append(line)
    return "\n".join(lines)


def _cmd_submit(args: argparse.Namespace) -> int:
    import leaderboard
    from metaenvs.errors import SubmissionError

    board = leaderboard.Board(args.board or leaderboard.default_board())
    try:
        sub = leaderboard.submit(
            args.result, board, init=args.init, command=command_line("submit", args.argv)
        )
    except SubmissionError as exc:
        for problem in exc.problems:
            print(f"metaenvs submit: refused: {problem}", file=sys.stderr)
        return 2
    agg = sub.aggregates
    print(f"entry {sub.entry_id} added to {board.root} ({sub.result['protocol_id']})")
    for stat in ("iqm", "mean"):
        a = agg[stat]
        print(
            f"  {stat} of {agg['score']}: {a['estimate']:.6g} [{a['low']:.6g}, {a['high']:.6g}] (recomputed)"
        )
    return 0


def _cmd_board_show(args: argparse.Namespace) -> int:
    import leaderboard

    board = leaderboard.Board(args.board or leaderboard.default_board())
    print(leaderboard.format_tables(leaderboard.ranked_protocols(board, args.dist)))
    return 0


def _cmd_board_render(args: argparse.Namespace) -> int:
    import leaderboard

    board = leaderboard.Board(args.board or leaderboard.default_board())
    print(f"page: {leaderboard.render_board(board, args.out_dir)}")
    return 0


def _cmd_board_verify(args: argparse.Namespace) -> int:
    import leaderboard

    board = leaderboard.Board(args.board or leaderboard.default_board())
    v = leaderboard.verify_entry(
        board, args.entry, args.init, progress=not args.no_progress, command=command_line("board", args.argv)
    )
    status = "verified" if v["verified"] else "NOT verified"
    print(
        f"entry {board.resolve(args.entry)}: {status}; "
        f"{v['runs_differing']} of {v['runs_compared']} runs differ, "
        f"max |diff| {v['max_abs_diff'] or 0.0:.3g}; IQM submitted {v['iqm_submitted']:.6g}, re-run "
        f"{v['iqm_rerun']:.6g} (diff {v['iqm_diff']:.3g})"
    )
    return 0 if v["verified"] else 1


def _cmd_data_path(args: argparse.Namespace) -> int:
    from metaenvs.data import data_dir

    print(data_dir(args.data_dir))
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from metaenvs.data import catalog

    names = sorted(catalog.CATALOG) if args.name == "all" else [args.name]
    for name in names:
        paths = catalog.fetch(name, args.data_dir, allow_unverified=args.allow_unverified)
        for remote in catalog.entry(name).files:
            path = paths[remote.filename]
            if catalog.has_checksum(remote):
                print(f"{name}: {path} verified")
            else:
                digest = path.with_name(path.name + ".sha256")
                print(f"{name}: {path} UNVERIFIED (no checksum on record); sha256 in {digest}")
    return 0


def _cmd_data_verify(args: argparse.Namespace) -> int:
    from metaenvs.data import catalog, data_dir

    report = catalog.verify(args.data_dir)
    print(f"data folder: {data_dir(args.data_dir)}")
    for name, row in report.items():
        print(f"{name:<15} {row['form']:<10} {row['detail']}")
    return 1 if any(r["form"] == "corrupt" for r in report.values()) else 0
