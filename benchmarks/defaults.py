"""Do the defaults train? Every algorithm's defaults (with the family's ``meta_defaults`` over them)
against training from scratch, paired on the same held-out tasks, seeds and budget (#14).

Usage (resumable: each finished pair is kept under ``--out/pairs``):
    python benchmarks/defaults.py --family Vision/Omniglot5way1shot-v0 \
        --meta-steps 100 --meta-batch 5 --tasks 40 --seeds 0,1 --out benchmarks/results/defaults_o5w1s

For each algorithm, ``meta_train`` runs ``--meta-steps`` meta steps of ``--meta-batch`` tasks with the
CLI's defaults (``make_meta_learner(algo, dist)``) and the protocol's inner budget; the learned
initialization and a fresh one (scratch: the agent's own random init, the same seed) are then trained
on the first ``--tasks`` tasks of the protocol's split for each ``--seeds`` seed. Reported per pair:
the mean score of both, the paired difference (learned minus scratch, signed so that positive is
better) with its Student-t 95% CI over tasks x seeds, and the number of paired wins. Writes
``result.json``.

This is a shortened run, not the paper's scale (Omniglot papers use thousands of meta steps of up to
32 tasks); its fraction of that scale is written into the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import make_agent
from baselines import make_meta_learner, meta_train
from metaenvs.io import write_json_atomic
from metaenvs.metrics import mean_ci

PAPER_META_STEPS = {"Vision/Omniglot5way1shot-v0": 100_000, "Vision/OmniglotAlphabets-v0": 1000}
"""The meta steps of the runs these families reproduce: Reptile's Omniglot (100k meta steps of 5
tasks, Nichol et al. 2018, Table 3 settings) and Leap's Omniglot (1000 meta steps of 20 alphabets,
Flennerhag et al. 2019)."""


def _arg(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return f"'{json.dumps(value)}'" if isinstance(value, dict) else str(value)


def scores_of(dist, init, tasks, seeds, budget) -> list[float]:
    agent = make_agent(dist, seed=0)
    out = []
    for seed in seeds:
        for task in tasks:
            agent.reset(seed)
            if init is not None:
                agent.set_parameters(init)
            curve = agent.learn(task, budget, seed=seed)
            out.append(float(agent.evaluate(task, seed=seed, curve=curve)[dist.protocol.metric]))
    return out


def one_pair(algo: str, args: argparse.Namespace, scratch: list[float]) -> dict:
    dist = metaenvs.make(args.family)
    agent = make_agent(dist, seed=0)
    shared = getattr(agent, "shared_parameters", None)
    overrides = args.settings.get(algo, {})
    learner = make_meta_learner(algo, dist, **({"params": shared} if shared else {}), **overrides)
    t0 = time.perf_counter()
    result = meta_train(
        agent, dist, learner, meta_steps=args.meta_steps, meta_batch_size=args.meta_batch,
        inner_steps=dist.protocol.budget, seed=0, progress=False,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    tasks = dist.tasks(args.split)[: args.tasks]
    learned = scores_of(dist, result.init, tasks, args.seeds, dist.protocol.budget)
    sign = 1.0 if dist.protocol.higher_is_better else -1.0
    diff = sign * (np.asarray(learned) - np.asarray(scratch))
    mean, half = mean_ci(diff.tolist())
    curve = [row["final_value"] for row in result.history]
    return {
        "algo": algo,
        "settings": {**dist.meta_defaults.get(algo, {}), **overrides},
        "learned": float(np.mean(learned)),
        "scratch": float(np.mean(scratch)),
        "improvement": mean,
        "improvement_ci95": half,
        "wins": int((diff > 0).sum()),
        "ties": int((diff == 0).sum()),
        "pairs": len(diff),
        "verdict": "better" if mean - half > 0 else ("worse" if mean + half < 0 else "tie"),
        "meta_train_curve": curve,
        "meta_train_seconds": train_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", required=True)
    parser.add_argument("--algos", default="leap,reptile,fomaml,fomamlpp,cts,mtl")
    parser.add_argument("--meta-steps", type=int, default=100)
    parser.add_argument("--meta-batch", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", default=None, help="held-out split (default: the protocol's; tune on val)")
    parser.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help='per-algorithm overrides, e.g. {"leap": {"meta_lr": 0.01}}',
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dist = metaenvs.make(args.family)
    args.split = args.split or dist.protocol.split
    (args.out / "pairs").mkdir(parents=True, exist_ok=True)
    tasks = dist.tasks(args.split)[: args.tasks]
    scratch = scores_of(dist, None, tasks, args.seeds, dist.protocol.budget)
    rows = []
    for algo in args.algos.split(","):
        path = args.out / "pairs" / f"{algo}.json"
        if path.exists():
            row = json.loads(path.read_text())
        else:
            row = one_pair(algo, args, scratch)
            write_json_atomic(path, row)
        rows.append(row)
        print(
            f"{algo:9s} learned {row['learned']:.4f} scratch {row['scratch']:.4f} "
            f"improvement {row['improvement']:+.4f} ± {row['improvement_ci95']:.4f} "
            f"wins {row['wins']}/{row['pairs']} -> {row['verdict']}",
            flush=True,
        )
    paper = PAPER_META_STEPS.get(args.family)
    write_json_atomic(
        args.out / "result.json",
        {
            "command": "python benchmarks/defaults.py "
            + " ".join(f"--{k.replace('_', '-')} {_arg(v)}" for k, v in vars(args).items()),
            "family": args.family,
            "metric": dist.protocol.metric,
            "higher_is_better": dist.protocol.higher_is_better,
            "meta_steps": args.meta_steps,
            "meta_batch": args.meta_batch,
            "fraction_of_paper_meta_steps": args.meta_steps / paper if paper else None,
            "split": args.split,
            "held_out_tasks": len(tasks),
            "seeds": args.seeds,
            "torch_threads": args.threads,
            "pairs": rows,
        },
    )


if __name__ == "__main__":
    main()
