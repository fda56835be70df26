"""Cost per inner step of every meta-learner relative to plain training of the same agent.

Usage:
    python benchmarks/overhead.py --out benchmarks/results/overhead/result.json

Hook-based learners (``"measure": "hook"``) are timed as ``agent.learn`` with the
learner's hook against ``agent.learn`` without hooks, one task per pair (``--repeats``
passes over the tasks); learners that need the driver
(CTS's lockstep) or run their own functional inner loop (MAML, the adjoint, iMAML,
A-MAML) (``"measure": "driver"``) as ``meta_train`` with the learner against
``meta_train`` with Scratch. Timings are ratios against the plain run measured in the
same process, interleaved (plain, hooked, plain, hooked, ...) so that machine noise
hits both; torch uses one thread.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import make_agent
from baselines import make_meta_learner, meta_train

HOOKED = ("noop", "leap", "reptile", "fomaml", "fomamlpp", "mtl", "scratch")
HOOKED_RL = ("noop", "leap", "reptile", "fomaml", "fomamlpp", "scratch")
"""``noop`` is a control: a hook with no handlers, so its spread is the measurement's noise."""
DRIVEN = ("cts", "maml", "adjoint", "imaml", "amaml")


def time_learn(agent, tasks, steps, hooks) -> float:
    t0 = time.perf_counter()
    for i, task in enumerate(tasks):
        agent.learn(task, steps, hooks=hooks, seed=i)
    return time.perf_counter() - t0


def interleaved(plain_fn, hooked_fn, repeats: int) -> dict:
    """Time ``plain_fn`` and ``hooked_fn`` in pairs whose order alternates (plain first, then hooked
    first), so drift and warm caches favour neither; medians and the spread of the per-pair ratio."""
    plain, hooked = [], []
    for i in range(repeats):
        if i % 2 == 0:
            plain.append(plain_fn())
            hooked.append(hooked_fn())
        else:
            hooked.append(hooked_fn())
            plain.append(plain_fn())
    ratios = [h / p for h, p in zip(hooked, plain, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "plain_s": statistics.median(plain),
        "hooked_s": statistics.median(hooked),
        "ratio_median": statistics.median(ratios),
        "ratio_q1": quartiles[0],
        "ratio_q3": quartiles[2],
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "repeats": repeats,
    }


def hook_overhead(dist, algo: str, steps: int, n_tasks: int, repeats: int, **agent_kwargs) -> dict:
    """Per-step time of ``agent.learn`` with the algorithm's hook over plain ``agent.learn``.

    Pairs are single tasks (the same task, seed and start parameters in both arms, the order
    alternating), so the machine's drift over seconds hits both arms of a pair alike.
    """
    from agents.parameters import copy_into

    agent = make_agent(dist, seed=0, **agent_kwargs)
    if algo == "noop":
        from agents.hooks import Hook

        learner = Hook()
        learner.reset_accumulators = lambda: None
    else:
        learner = make_meta_learner(algo, dist)
        learner.initialize(agent)
    tasks = dist.sample(np.random.default_rng(0), "train", n_tasks)
    start = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    time_learn(agent, tasks[:1], steps, [])  # warm-up
    calls = itertools.count()

    def one(hooks: list) -> float:
        i = next(calls) // 2  # both arms of a pair: the same task and seed
        copy_into(agent.model, start)
        t0 = time.perf_counter()
        agent.learn(tasks[i % n_tasks], steps, hooks=hooks, seed=i)
        seconds = time.perf_counter() - t0
        if hooks and i % n_tasks == n_tasks - 1:
            learner.reset_accumulators()
        return seconds

    plain = interleaved(lambda: one([]), lambda: one([learner]), repeats * n_tasks)
    return {"algo": algo, "measure": "hook", **plain}


def driver_overhead(dist, algo: str, steps: int, batch: int, repeats: int, **agent_kwargs) -> dict:
    """Per-step time of ``meta_train`` with the algorithm over ``meta_train`` with Scratch."""

    def run(name: str) -> float:
        agent = make_agent(dist, seed=0, **agent_kwargs)
        t0 = time.perf_counter()
        meta_train(
            agent,
            dist,
            make_meta_learner(name, dist),  # the family defaults (iMAML: reg 10 on sinusoids)
            meta_steps=2,
            meta_batch_size=batch,
            inner_steps=steps,
            progress=False,
        )
        return time.perf_counter() - t0

    run("scratch")
    return {
        "algo": algo,
        "measure": "driver",
        **interleaved(lambda: run("scratch"), lambda: run(algo), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/overhead/result.json")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sine = metaenvs.make("Synthetic/Sinusoid-v0")
    cart = metaenvs.make("Control/CartPolePhysics-v0")
    results = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "cpus": __import__("os").cpu_count(),
        },
        "command": f"python benchmarks/overhead.py --repeats {args.repeats}",
        "figure": "ratio = time with the meta-learner / time of plain training, median of interleaved pairs",
        "mlp_regression": [hook_overhead(sine, a, 100, 10, args.repeats) for a in HOOKED]
        + [driver_overhead(sine, a, 100, 5, args.repeats) for a in DRIVEN],
        "a2c_cartpole": [hook_overhead(cart, a, 2000, 2, args.repeats, n_envs=4) for a in HOOKED_RL]
        + [driver_overhead(cart, "cts", 1000, 2, max(3, args.repeats // 2), n_envs=4)],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for family in ("mlp_regression", "a2c_cartpole"):
        for row in results[family]:
            print(
                f"{family:<15} {row['algo']:<8} ratio {row['ratio_median']:.3f} "
                f"(quartiles {row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}, "
                f"min {row['ratio_min']:.3f}, max {row['ratio_max']:.3f})"
            )


if __name__ == "__main__":
    main()
