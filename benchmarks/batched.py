"""Batched inner loops (vmap) against the per-task loop: tasks x inner steps per second.

Usage:
    python benchmarks/batched.py --out benchmarks/results/batched [--device cuda] [--sizes 5,32,128]

For each family (sinusoid regression with the MLP 2x40, Jester-1 ratings with the
MLP, Omniglot 5-way 1-shot with conv4) and meta-batch size B, one meta-batch of B
tasks is trained for K inner steps by the per-task loop (``agent.learn`` task after
task) and by the batched agent (``agent.learn_batch``), both with the same hook
(none, Leap, or Reptile) or second-order learner (MAML). The two are timed
alternately ``--repeats`` times in one process; the figure reported is the median of
the per-pair ratios loop time / batched time (machines are shared and noisy, so
only ratios measured side by side are compared), with throughputs in tasks x inner
steps per second for scale.

Writes ``result.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import SupervisedAgent
from baselines import make_meta_learner

FAMILIES = {
    "regression": ("Synthetic/Sinusoid-v0", {}, 20),
    "ratings": ("Ratings/Jester1_10shot15val-v0", {}, 20),
    "omniglot_conv4": ("Vision/Omniglot5way1shot-v0", {"batch_size": None}, 5),
}
METHODS = ("plain", "leap", "reptile", "maml")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def runner(dist, method: str, size: int, steps: int, device: str, batched: bool, overrides: dict):
    """A closure that trains one meta-batch of ``size`` tasks and returns the seconds it took."""
    agent = SupervisedAgent.for_distribution(dist, seed=0, device=device, batched=batched, **overrides)
    tasks = dist.sample(np.random.default_rng(0), "train", size)
    seeds = list(range(size))
    learner = None if method == "plain" else make_meta_learner(method)
    if learner is not None:
        learner.initialize(agent)
    hooks = [] if learner is None or method == "maml" else [learner]

    def run() -> float:
        if learner is not None:
            learner.reset_accumulators()
        _sync(device)
        t0 = time.perf_counter()
        if method == "maml":
            if batched:
                learner.learn_batch(agent, tasks, steps, seeds)
            else:
                for task, seed in zip(tasks, seeds, strict=True):
                    learner.learn_task(agent, task, steps, seed)
        elif batched:
            agent.learn_batch(tasks, steps, hooks=hooks, seeds=seeds)
        else:
            for task, seed in zip(tasks, seeds, strict=True):
                agent.learn(task, steps, hooks=hooks, seed=seed)
        _sync(device)
        return time.perf_counter() - t0

    run()  # warm-up: loads the data, builds caches
    return run


def measure(dist, method: str, size: int, steps: int, device: str, repeats: int, overrides: dict) -> dict:
    loop = runner(dist, method, size, steps, device, False, overrides)
    batched = runner(dist, method, size, steps, device, True, overrides)
    loop_s, batched_s = [], []
    for _ in range(repeats):
        loop_s.append(loop())
        batched_s.append(batched())
    ratios = [a / b for a, b in zip(loop_s, batched_s, strict=True)]
    work = size * steps
    return {
        "meta_batch": size,
        "inner_steps": steps,
        "method": method,
        "loop_task_steps_per_s": work / statistics.median(loop_s),
        "batched_task_steps_per_s": work / statistics.median(batched_s),
        "speedup_median": statistics.median(ratios),
        "speedup_min": min(ratios),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="5,32,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", default="benchmarks/results/batched")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for family in args.families.split(","):
        dist_id, overrides, steps = FAMILIES[family]
        dist = metaenvs.make(dist_id)
        methods = METHODS if family == "regression" else ("plain", "leap")
        for method in methods:
            for size in sizes:
                row = {"family": family, "dist_id": dist_id, **measure(
                    dist, method, size, steps, args.device, args.repeats, overrides
                )}  # fmt: skip
                rows.append(row)
                print(
                    f"{family:<15} {method:<8} B={size:<4} loop {row['loop_task_steps_per_s']:9.0f}  "
                    f"batched {row['batched_task_steps_per_s']:9.0f} task-steps/s  "
                    f"speedup {row['speedup_median']:.2f}x",
                    flush=True,
                )
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {
        "command": f"python benchmarks/batched.py --device {args.device} --sizes {args.sizes} "
        f"--repeats {args.repeats} --threads {args.threads}",
        "device": device_name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "torch_threads": torch.get_num_threads(),
        "figure": "speedup = per-task loop seconds / batched seconds, median of interleaved pairs",
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "result.json" if args.device == "cpu" else f"result_{args.device.split(':')[0]}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
