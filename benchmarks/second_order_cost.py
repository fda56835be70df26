"""Peak memory and time of one meta-gradient against the inner-loop length K.

Usage:
    python benchmarks/second_order_cost.py --device cuda --out benchmarks/results/second_order_cost

Setup: ``Synthetic/CosMixture100shot-v0`` (100 support points), MLP 2x32 tanh,
inner SGD at lr 0.01, one task. Methods: MAML (graph), FOMAML, iMAML (5 CG steps),
A-MAML (RK4 forward, Heun adjoint, on a grid of step h = lr and, ``amaml_coarse``,
h = 5 lr), the exact discrete adjoint (stored states and sqrt-K checkpoints), and the baseline: a plain K-step
functional inner loop. Time is the median of ``--repeats`` runs, reported as a
ratio to the baseline measured in the same run. Peak memory on CUDA is the torch
allocator's peak above what was allocated before the call; on CPU each measurement
runs in a fresh subprocess (warmed up at K = 2) and reports the peak RSS growth of one
call, and the median ratio of interleaved timings against the baseline in that process.

Writes ``result.json`` and ``result.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import metaenvs
from agents import SupervisedAgent
from agents.functional import inner_loop
from baselines import AMAML, FOMAML, IMAML, MAML, ExactAdjoint

METHODS = {
    "inner_loop": None,
    "maml": lambda: MAML(),
    "fomaml": lambda: FOMAML(),
    "imaml": lambda: IMAML(reg=1.0, cg_steps=5),
    "amaml": lambda: AMAML(step=0.01, solver="rk4"),
    "amaml_coarse": lambda: AMAML(step=0.05, solver="rk4"),
    "adjoint_stored": lambda: ExactAdjoint(checkpoint=False),
    "adjoint_checkpointed": lambda: ExactAdjoint(checkpoint=True),
}


def setup(device: str):
    dist = metaenvs.make("Synthetic/CosMixture100shot-v0")
    agent = SupervisedAgent.for_distribution(dist, seed=0, lr=0.01, device=device)
    return agent, dist.tasks("train")[0]


def one_call(method: str, agent, task, steps: int) -> None:
    if method == "inner_loop":  # the plain K-step loop: the one functional loop, no meta-gradient
        start = {k: v.detach() for k, v in agent.model.named_parameters()}
        batch = agent.task_batch([task], steps, [0], batched=False)
        inner_loop(agent.loss_function(batch.loss), start, batch, steps, agent.inner_optimizer)
        return
    learner = METHODS[method]()
    learner.initialize(agent)
    if learner.kind == "callback":
        agent.learn(task, steps, hooks=[learner], seed=0)
    else:
        learner.learn_task(agent, task, steps, seed=0)


def measure_cuda(method: str, agent, task, steps: int, repeats: int) -> dict:
    one_call(method, agent, task, steps)  # warm-up
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_call(method, agent, task, steps)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "peak_bytes": torch.cuda.max_memory_allocated() - base}


CPU_PROBE = """
import json, resource, statistics, sys, time
sys.path.insert(0, "benchmarks")
import second_order_cost as b
import torch
torch.set_num_threads(1)
method, steps, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
agent, task = b.setup("cpu")
b.one_call(method, agent, task, 2)
b.one_call("inner_loop", agent, task, 2)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
b.one_call(method, agent, task, steps)
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
ratios, seconds = [], []
for i in range(repeats):  # interleaved, the order alternating
    t = {}
    for arm in (("inner_loop", method) if i % 2 == 0 else (method, "inner_loop")):
        t0 = time.perf_counter(); b.one_call(arm, agent, task, steps); t[arm] = time.perf_counter() - t0
    ratios.append(t[method] / t["inner_loop"]); seconds.append(t[method])
print(json.dumps({"seconds": statistics.median(seconds), "peak_bytes": peak,
                  "time_ratio_to_inner_loop": statistics.median(ratios),
                  "time_ratio_min": min(ratios), "time_ratio_max": max(ratios)}))
"""


def measure_cpu_subprocess(method: str, steps: int, repeats: int) -> dict:
    """Fresh process: warm up at K=2, then peak-RSS growth of one call at K, then interleaved timings."""
    args = [sys.executable, "-c", CPU_PROBE, method, str(steps), str(repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ks", default="10,50,100,200,500,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/second_order_cost")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    rows = []
    agent, task = setup(args.device) if args.device != "cpu" else (None, None)
    for k in ks:
        for method in METHODS:
            if args.device == "cpu":
                row = measure_cpu_subprocess(method, k, args.repeats)
            else:
                row = measure_cuda(method, agent, task, k, args.repeats)
            rows.append({"method": method, "K": k, **row})
            peak = row["peak_bytes"] / 2**20
            print(f"K={k:<5} {method:<22} {row['seconds'] * 1e3:9.1f} ms  peak {peak:9.2f} MiB", flush=True)
    for row in rows:  # CUDA rows: ratio to the baseline row of the same K (CPU rows carry their own)
        base = next(r for r in rows if r["K"] == row["K"] and r["method"] == "inner_loop")
        row.setdefault("time_ratio_to_inner_loop", row["seconds"] / base["seconds"])
    maml_100 = next((r["peak_bytes"] for r in rows if r["method"] == "maml" and r["K"] == 100), None)
    goals = {}
    for method in ("adjoint_stored", "adjoint_checkpointed", "amaml", "amaml_coarse"):
        at_1000 = next((r for r in rows if r["method"] == method and r["K"] == 1000), None)
        if at_1000 and maml_100:
            goals[method] = {
                "peak_at_1000_over_maml_peak_at_100": at_1000["peak_bytes"] / maml_100,
                "time_ratio_at_1000": at_1000["time_ratio_to_inner_loop"],
            }
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {
        "command": "python benchmarks/second_order_cost.py "
        f"--device {args.device} --ks {args.ks} --repeats {args.repeats}",
        "device": device_name,
        "torch": torch.__version__,
        "rows": rows,
        "goals": goals,
        "peak_memory": "torch CUDA allocator peak above baseline"
        if args.device != "cpu"
        else "peak RSS growth of a fresh subprocess",
        "max_rss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, out / "result.png", device_name)
    print(json.dumps(goals, indent=2))


def plot(rows: list[dict], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4), dpi=120)
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        ks = [r["K"] for r in mine]
        ax.plot(ks, [max(r["peak_bytes"], 2**16) / 2**20 for r in mine], "-o", label=method, markersize=3)
        bx.plot(ks, [r["time_ratio_to_inner_loop"] for r in mine], "-o", label=method, markersize=3)
    for axis, label in (
        (ax, "peak memory (MiB; 0.06 = below resolution)"),
        (bx, "time / plain K-step inner loop"),
    ):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("inner steps K")
        axis.set_ylabel(label)
    ax.set_title(f"one meta-gradient, CosMixture 100-shot, MLP 2x32 ({device})")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
