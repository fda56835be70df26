"""The ``metaenvs`` command. The one module that ties all layers together (with lazy imports)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from metaenvs.cli_args import (
    ALGORITHM_NAMES,
    DEFAULTS,
    _dist_id,
    _non_negative_int,
    _positive_int,
    _step_size,
    parse_seeds,
)
from metaenvs.cli_board import (
    _cmd_board_render,
    _cmd_board_show,
    _cmd_board_verify,
    _cmd_data_fetch,
    _cmd_data_path,
    _cmd_data_verify,
    _cmd_submit,
)
from metaenvs.cli_evaluate import _cmd_evaluate
from metaenvs.errors import InvalidArgumentError, MetaEnvsError

__all__ = ["ALGORITHM_NAMES", "build_parser", "main", "parse_seeds"]

EPILOG = """examples:
  metaenvs quickstart
  metaenvs list --family Synthetic
  metaenvs info Synthetic/Sinusoid-v0
  metaenvs train --dist Synthetic/Sinusoid-v0 --algo reptile --meta-steps 500 --out runs/reptile
  metaenvs evaluate --dist Synthetic/Sinusoid-v0 --init runs/reptile/init.safetensors --out result.json
  metaenvs submit result.json --init runs/reptile/init.safetensors
  metaenvs board show --dist Synthetic/Sinusoid-v0
"""


def _cmd_list(args: argparse.Namespace) -> int:
    import metaenvs

    metaenvs.pprint_registry(family=args.family)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import metaenvs

    dist = metaenvs.make(args.id, seed=args.seed)
    protocol = dist.protocol
    info = {
        "id": dist.id,
        "kind": dist.kind,
        "description": dist.spec.description,
        "spec": json.loads(dist.spec.to_json()),
        "seed": dist.seed,
        "splits": {s: ("infinite" if n is None else n) for s, n in dist.splits.items()},
        **({"split_rule": dist.split_rule} if dist.split_rule else {}),
        "protocol": {**protocol.to_dict(), "id": protocol.id, "hash": protocol.hash},
        "split_hash": dist.split_hash(),
        "default_model": dict(dist.default_model),
        "meta_defaults": {k: dict(v) for k, v in dist.meta_defaults.items()},
        "held_out_tasks": [t.id for t in dist.tasks(protocol.split)][: args.max_tasks],
    }
    from baselines.costs import evaluation_cost, protocol_budget

    info["budget"] = protocol_budget(dist)
    if not args.no_estimate:
        from agents import make_agent

        info["cost_estimate"] = evaluation_cost(make_agent(dist, seed=0), dist)
    print(json.dumps(info, indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import metaenvs
    from agents import make_agent
    from baselines import make_meta_learner, meta_train

    if args.address is not None and args.executor != "ray":
        raise InvalidArgumentError(
            f"--address {args.address} names a Ray cluster, but --executor is {args.executor!r}; "
            "add --executor ray."
        )
    dist = metaenvs.make(args.dist, seed=args.dist_seed)
    if args.batched and dist.kind != "supervised":
        raise InvalidArgumentError(f"--batched trains supervised agents; {args.dist} is an RL distribution.")
    agent = make_agent(dist, seed=args.seed, **({"batched": True} if args.batched else {}))
    kwargs = {} if args.meta_lr is None else {"meta_lr": args.meta_lr}
    params = args.params.split(",") if args.params else getattr(agent, "shared_parameters", None)
    if params is not None:
        kwargs["params"] = params
    family = {k: v for k, v in dist.meta_defaults.get(args.algo, {}).items() if k not in kwargs}
    if family:
        print(f"{dist.id}'s own defaults for {args.algo}: {json.dumps(family)} (see metaenvs info)")
    learner = make_meta_learner(args.algo, dist, **kwargs)
    inner_steps = dist.protocol.budget if args.inner_steps is None else args.inner_steps
    print(
        f"meta-training {learner.name} on {dist.id}: {args.meta_steps} meta steps x {args.meta_batch} tasks "
        f"x {inner_steps} {dist.protocol.budget_unit}; meta-learner {json.dumps(learner.hyperparameters())}; "
        f"agent {json.dumps(agent.hyperparameters())}"
    )
    if args.dry_run:
        from baselines.costs import meta_training_cost

        cost = meta_training_cost(agent, dist, learner, args.meta_steps, args.meta_batch, inner_steps)
        print(
            f"dry run: {cost['total_steps']:,} {cost['unit']}"
            + (f" ({cost['frames']:,} frames)" if "frames" in cost else "")
            + f", {cost['estimate']}; nothing was trained."
        )
        return 0
    result = meta_train(
        agent,
        dist,
        learner,
        meta_steps=args.meta_steps,
        meta_batch_size=args.meta_batch,
        inner_steps=args.inner_steps,
        seed=args.seed,
        out_dir=args.out,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        executor=args.executor,
        ray_address=args.address,
    )
    if result.resumed_from:
        print(f"resumed from meta step {result.resumed_from}")
    print(f"initialization: {result.init_path}")
    print(f"log: {Path(args.out) / 'log.csv'}")
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from baselines.quickstart import run_quickstart

    report = run_quickstart(
        args.out, meta_steps=args.meta_steps, seed=args.seed, progress=not args.no_progress
    )
    print()
    print(report["table"])
    print(f"\nlearning curves: {report['png']}\ninitialization: {report['init']}")
    print(f"done in {report['seconds']:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``metaenvs`` command."""
    from metaenvs import __version__

    parser = argparse.ArgumentParser(
        prog="metaenvs",
        description="Registered task distributions and meta-learners for reproducible meta-learning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"metaenvs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered task distributions", formatter_class=DEFAULTS)
    p.add_argument("--family", help="only this family (e.g. Synthetic, Control)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "info", help="show a distribution's spec, splits and protocol", formatter_class=DEFAULTS
    )
    p.add_argument("id", type=_dist_id, help="task-distribution id, e.g. Synthetic/Sinusoid-v0")
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="distribution seed (fixes held-out tasks)"
    )
    p.add_argument("--max-tasks", type=_positive_int, default=20, help="held-out task ids to show")
    p.add_argument(
        "--no-estimate", action="store_true", help="skip the measured estimate of the evaluation's time"
    )
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="meta-train an initialization", formatter_class=DEFAULTS)
    p.add_argument("--dist", required=True, type=_dist_id, help="task-distribution id")
    p.add_argument(
        "--algo", default="reptile", choices=ALGORITHM_NAMES, metavar="ALGO", help="meta-learner: %(choices)s"
    )
    p.add_argument("--meta-steps", type=_positive_int, default=1000, help="number of meta-updates")
    p.add_argument("--meta-batch", type=_positive_int, default=5, help="tasks per meta-update")
    p.add_argument(
        "--inner-steps", type=_positive_int, default=None, help="budget per task (default: the protocol's)"
    )
    p.add_argument(
        "--meta-lr", type=_step_size, default=None, help="meta step size (default: the algorithm's)"
    )
    p.add_argument(
        "--params",
        default=None,
        help="comma-separated parameter-name prefixes to meta-learn (default: every parameter the "
        "distribution's tasks share; for Atari, whose games have their own action heads, the encoder)",
    )
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="run seed (batches, task seeds, initial weights)"
    )
    p.add_argument("--dist-seed", type=_non_negative_int, default=0, help="distribution seed")
    p.add_argument("--out", required=True, help="run folder (log.csv, checkpoints, init.safetensors)")
    p.add_argument(
        "--checkpoint-every", type=_positive_int, default=10, help="meta steps between checkpoints"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where tasks run: this process, or Ray tasks / actors (pip install 'metaenvs[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join with --executor ray ('auto', HOST:6379); default: a local Ray instance",
    )
    p.add_argument(
        "--batched", action="store_true", help="train each meta-batch at once with vmap (supervised)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the budget and a measured time estimate, train nothing"
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate", help="evaluate an initialization on held-out tasks", formatter_class=DEFAULTS
    )
    p.add_argument("--dist", required=True, type=_dist_id, help="task-distribution id")
    p.add_argument("--init", default=None, help="init.safetensors (omit: random init per seed)")
    p.add_argument(
        "--baseline",
        default=None,
        help="evaluate a trivial baseline instead of an agent (global_mean, item_mean, user_mean, "
        "item_mean_user_offset for ratings; support_mean, mean_function for regression; nearest_centroid "
        "for classification; see baselines/trivial.py)",
    )
    p.add_argument("--split", default=None, help="split to evaluate (default: the protocol's, 'test')")
    p.add_argument(
        "--seeds", type=parse_seeds, default=None, help="seeds, e.g. 0,1,2 or 0-4 (default: the protocol's)"
    )
    p.add_argument(
        "--budget", type=_positive_int, default=None, help="steps per task (default: the protocol's)"
    )
    p.add_argument("--dist-seed", type=_non_negative_int, default=0, help="distribution seed")
    p.add_argument(
        "--custom",
        action="store_true",
        help="allow an agent off the protocol's recipe (recorded as a custom protocol, never ranked)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the budget and a measured time estimate, evaluate nothing",
    )
    p.add_argument(
        "--allow-foreign-init",
        action="store_true",
        help="evaluate an initialization whose card names another distribution (a transfer)",
    )
    p.add_argument("--out", default=None, help="write the result JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--submitter", default=None, help="name shown on the leaderboard")
    p.add_argument("--code-url", default=None, help="link to the code (http or https), shown on the board")
    p.add_argument(
        "--prior-command",
        action="append",
        default=[],
        help="a command that produced the init (e.g. the `metaenvs train` line); recorded in the result",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "submit", help="validate a result and add it to the leaderboard", formatter_class=DEFAULTS
    )
    p.add_argument("result", help="result JSON written by `metaenvs evaluate --out`")
    p.add_argument(
        "--board", default=None, help="board folder (default: $METAENVS_BOARD or leaderboard/board)"
    )
    p.add_argument(
        "--init", default=None, help="the init.safetensors evaluated (stored so the entry can be verified)"
    )
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("board", help="the leaderboard: show, render, verify", formatter_class=DEFAULTS)
    board_sub = p.add_subparsers(dest="board_command", required=True, metavar="BOARD_COMMAND")
    q = board_sub.add_parser(
        "show", help="ranked table per protocol, with CIs and verified marks", formatter_class=DEFAULTS
    )
    q.add_argument("--dist", default=None, type=_dist_id, help="only this distribution id")
    q.add_argument("--board", default=None, help="board folder")
    q.set_defaults(func=_cmd_board_show)
    q = board_sub.add_parser(
        "render", help="write a static HTML page (tables and plots)", formatter_class=DEFAULTS
    )
    q.add_argument("out_dir", help="output folder (index.html)")
    q.add_argument("--board", default=None, help="board folder")
    q.set_defaults(func=_cmd_board_render)
    q = board_sub.add_parser(
        "verify", help="re-run an entry's evaluation and mark it verified or not", formatter_class=DEFAULTS
    )
    q.add_argument("entry", help="entry id (or a unique prefix of 6+ hex digits)")
    q.add_argument("--board", default=None, help="board folder")
    q.add_argument("--init", default=None, help="the initialization, if the board does not hold it")
    q.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    q.set_defaults(func=_cmd_board_verify)

    p = sub.add_parser("data", help="data sets: where they live, download, verify", formatter_class=DEFAULTS)
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    q = data_sub.add_parser(
        "path",
        help="print the data folder (--data-dir > $METAENVS_DATA > user cache)",
        formatter_class=DEFAULTS,
    )
    q.add_argument("--data-dir", default=None, help="explicit data folder")
    q.set_defaults(func=_cmd_data_path)
    q = data_sub.add_parser(
        "fetch", help="download a data set's canonical files and verify them", formatter_class=DEFAULTS
    )
    q.add_argument("name", help="catalogue name (see `metaenvs data verify`), or 'all'")
    q.add_argument("--data-dir", default=None, help="explicit data folder")
    q.add_argument(
        "--allow-unverified", action="store_true", help="also download files that have no checksum on record"
    )
    q.set_defaults(func=_cmd_data_fetch)
    q = data_sub.add_parser(
        "verify", help="check every data set in the data folder (exit 1 if one is corrupt)"
    )
    q.add_argument("--data-dir", default=None, help="explicit data folder")
    q.set_defaults(func=_cmd_data_verify)

    p = sub.add_parser(
        "quickstart", help="Reptile vs scratch on sinusoid regression (no download)", formatter_class=DEFAULTS
    )
    p.add_argument("--out", default="quickstart_out", help="output folder")
    p.add_argument("--meta-steps", type=_positive_int, default=1000, help="Reptile meta steps")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="run seed")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metaenvs`` console script."""
    try:
        args = build_parser().parse_args(argv)  # every argument is checked here, before heavy imports
    except SystemExit as exc:  # --help, --version, or a bad argument (argparse printed why)
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except MetaEnvsError as exc:
        print(f"metaenvs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: say which, without a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"metaenvs {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"metaenvs {args.command}: interrupted; a run folder resumes from its last checkpoint",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
