"""``metaenvs evaluate``: an initialization, scratch or a trivial baseline under a protocol (lazy imports)."""

from __future__ import annotations

import argparse

from metaenvs.cli_args import command_line
from metaenvs.cli_board import MAX_TASK_ROWS, _check_submission_fields, _per_task_table
from metaenvs.errors import InvalidArgumentError


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import metaenvs
    from agents import make_agent
    from baselines.quickstart import format_table
    from metaenvs.evaluation import evaluate

    dist = metaenvs.make(args.dist, seed=args.dist_seed)
    protocol = dist.protocol
    changes = {}
    if args.split is not None:
        changes["split"] = args.split
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.budget is not None:
        changes["budget"] = args.budget
    protocol = protocol.customised(**changes)  # the protocol itself when every value is its own
    if protocol.split not in dist.splits or dist.splits[protocol.split] is None:
        finite = [s for s, n in dist.splits.items() if n is not None]
        raise InvalidArgumentError(f"--split {protocol.split!r}: {dist.id} has the finite splits {finite}.")
    commands = [*args.prior_command, command_line("evaluate", args.argv)]
    _check_submission_fields(args.submitter, args.code_url, commands)  # before hours of evaluation
    if args.baseline is not None:
        if args.init is not None:
            raise InvalidArgumentError(
                f"--baseline {args.baseline} has no parameters: it takes no --init (drop one of the two)."
            )
        from baselines.trivial import make_baseline

        agent = make_baseline(args.baseline, dist)
    else:
        agent = make_agent(dist, seed=0)
    if args.dry_run:
        from baselines.costs import evaluation_cost

        cost = evaluation_cost(agent, dist, protocol)
        print(
            f"dry run: {protocol.id}: {cost['tasks']} tasks x {cost['seeds']} seeds = {cost['runs']} runs of "
            f"{cost['steps_per_run']:,} {cost['unit']}"
            + (f" ({cost['frames']:,} frames)" if "frames" in cost else "")
            + f", {cost['estimate']}; nothing was evaluated."
        )
        return 0
    result = evaluate(
        agent,
        dist,
        args.init,
        protocol,
        out=args.out,
        progress=not args.no_progress,
        submitter=args.submitter,
        code_url=args.code_url,
        commands=commands,
        custom=args.custom,
        allow_foreign_init=args.allow_foreign_init,
    )
    card = result.init.get("card") or {}
    label = str(card.get("algorithm", "init")) if args.init else "scratch"
    label = f"baseline: {args.baseline}" if args.baseline is not None else label
    rows = result.per_task()
    if len(rows) <= MAX_TASK_ROWS:  # a fixed set (games, env ids): each task's own score, never averaged raw
        print(_per_task_table(rows, protocol))
    if dist.held_out_tasks_are_a_sample or protocol.normalisation is not None or len(rows) == 1:
        print(format_table([{"method": label, "summary": result.summary()}], protocol.metric))
    else:
        print(
            f"({label}: raw scores of different tasks in a fixed set are not averaged; {protocol.id} has "
            "no normalisation)"
        )
    print(f"protocol {protocol.id} hash {protocol.hash[:16]}")
    if args.out:
        print(f"result: {args.out}")
    return 0
