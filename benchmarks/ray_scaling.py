"""The Ray executor with 1 and 2 workers against the local executor, in one run.

Usage:
    python benchmarks/ray_scaling.py --out benchmarks/results/ray_scaling [--repeats 3]

Workloads: Leap on sinusoid regression (MLP, 8 tasks x 300 inner steps per meta
step) and Reptile on CartPole physics (SB3 A2C, 4 tasks x 3000 timesteps). Each
repeat times ``meta_train`` (2 meta steps) with the local executor, then with a
local Ray instance of 1 CPU, then of 2 CPUs (Ray started and warmed up before the
clock starts, shut down after). The figure is the median over repeats of the
per-repeat ratio local seconds / Ray seconds (> 1: Ray is faster). Every run also
checks that Ray's initialization equals the local one bitwise. Torch runs one
thread per process (driver and workers), so worker count is the only parallelism.

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

import torch

import metaenvs
from agents import make_agent
from baselines import make_meta_learner, meta_train

WORKLOADS = {
    "sinusoid_leap": ("Synthetic/Sinusoid-v0", "leap", 8, 300, {"batch_size": 10}),
    "cartpole_a2c_reptile": ("Control/CartPolePhysics-v0", "reptile", 4, 3000, {"n_envs": 4}),
}


def run(workload: str, executor: str, meta_steps: int) -> tuple[float, dict]:
    dist_id, algo, batch, steps, agent_kwargs = WORKLOADS[workload]
    dist = metaenvs.make(dist_id)
    agent = make_agent(dist, seed=0, **agent_kwargs)
    t0 = time.perf_counter()
    result = meta_train(
        agent,
        dist,
        make_meta_learner(algo),
        meta_steps=meta_steps,
        meta_batch_size=batch,
        inner_steps=steps,
        seed=0,
        progress=False,
        executor=executor,
    )
    return time.perf_counter() - t0, result.init


def with_ray(workers: int, workload: str, meta_steps: int) -> tuple[float, dict]:
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        run(workload, "ray", 1)  # warm-up: worker processes start, imports
        return run(workload, "ray", meta_steps)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--meta-steps", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/ray_scaling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for workload in WORKLOADS:
        run(workload, "local", 1)  # warm-up
        times: dict[str, list[float]] = {"local": [], "ray_1": [], "ray_2": []}
        identical = True
        for _ in range(args.repeats):
            seconds, local_init = run(workload, "local", args.meta_steps)
            times["local"].append(seconds)
            for workers in (1, 2):
                seconds, init = with_ray(workers, workload, args.meta_steps)
                times[f"ray_{workers}"].append(seconds)
                identical &= all(torch.equal(init[k], local_init[k]) for k in local_init)
        row = {"workload": workload, "identical_to_local": identical, "repeats": args.repeats}
        row.update({f"{name}_s_median": statistics.median(values) for name, values in times.items()})
        for workers in (1, 2):
            ratios = [a / b for a, b in zip(times["local"], times[f"ray_{workers}"], strict=True)]
            row[f"speedup_ray_{workers}_vs_local"] = statistics.median(ratios)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "command": "python benchmarks/ray_scaling.py "
        f"--repeats {args.repeats} --meta-steps {args.meta_steps}",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "figure": "speedup = local executor seconds / Ray executor seconds, median of per-repeat ratios",
        "workloads": {
            k: {"dist": v[0], "algo": v[1], "meta_batch": v[2], "inner_steps": v[3]}
            for k, v in WORKLOADS.items()
        },
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
