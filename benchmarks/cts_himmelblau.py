"""CTS against CTS-accurate and Reptile on the rotated 2-D Himmelblau tasks (Shin et al. 2021, Fig. 2-3).

Usage:
    python benchmarks/cts_himmelblau.py --out benchmarks/results/cts_himmelblau

Setup (the paper's toy): the 8 training tasks of ``Synthetic/RotatedHimmelblau-v0``
(the authors' environment), inner SGD with momentum 0.9 at lr 0.05, meta SGD at
lr 0.1, K = 100 inner steps per reset, 3 resets, from 8 of the 9 starting points
{-5, 5, 15}^2 of the authors' script (see ``STARTS``). The initialization is scored by the
task-average loss after 100 inner steps from it, against the cumulative number of
inner steps per task spent on meta-training. CTS-accurate also records the
shifting approximation error epsilon_k.

Writes ``result.json`` and ``result.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import make_agent
from baselines import CTS, Reptile
from baselines.lockstep import run_cooperatively

# The authors' starting grid {-5, 5, 15}^2 without (15, 15): from there plain SGD with momentum
# at lr 0.05 already overflows on task 05 (the loss becomes inf), so no method has a score.
STARTS = [(x, y) for x in (-5.0, 5.0, 15.0) for y in (-5.0, 5.0, 15.0) if (x, y) != (15.0, 15.0)]


def score(agent, tasks, point, steps) -> float:
    """Task-average loss after ``steps`` inner steps from ``point``."""
    finals = []
    for task in tasks:
        agent.set_parameters({"point": torch.tensor(point, dtype=torch.float32)})
        finals.append(agent.learn(task, steps).values[-1])
    return float(np.mean(finals))


class RecordingCTS(CTS):
    """CTS that keeps the initialization after every per-step meta-update."""

    def _meta_step_and_shift(self, k: int) -> None:
        super()._meta_step_and_shift(k)
        self.path.append(self.init["point"].detach().clone().numpy().tolist())


def run_cts(agent, tasks, start, steps, resets, accurate) -> tuple[list, list]:
    learner = RecordingCTS(meta_lr=0.1, accurate=accurate)
    learner.path = []
    agent.set_parameters({"point": torch.tensor(start)})
    learner.initialize(agent, total_meta_steps=resets)
    replicas = [copy.deepcopy(agent) for _ in tasks]
    for _ in range(resets):
        learner.begin_meta_batch(len(tasks))
        run_cooperatively(
            [r.learn_steps(t, steps, hooks=[learner]) for r, t in zip(replicas, tasks, strict=True)]
        )
        learner.meta_update()
    return learner.path, learner.epsilon


def run_reptile(agent, tasks, start, steps, resets) -> list:
    learner = Reptile(meta_lr=0.1, schedule="constant")
    agent.set_parameters({"point": torch.tensor(start)})
    learner.initialize(agent, total_meta_steps=resets)
    path = []
    for _ in range(resets):
        for task in tasks:
            agent.learn(task, steps, hooks=[learner])
        learner.meta_update()
        path.append(learner.init["point"].detach().clone().numpy().tolist())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/cts_himmelblau")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--resets", type=int, default=3)
    parser.add_argument("--every", type=int, default=10, help="score CTS every this many inner steps")
    args = parser.parse_args()
    t0 = time.perf_counter()
    dist = metaenvs.make("Synthetic/RotatedHimmelblau-v0")
    tasks = dist.tasks("train")
    agent = make_agent(dist, seed=0, dtype=torch.float32)
    rows, epsilons = [], []
    for start in STARTS:
        cts_path, _ = run_cts(agent, tasks, start, args.steps, args.resets, accurate=False)
        acc_path, eps = run_cts(agent, tasks, start, args.steps, args.resets, accurate=True)
        rep_path = run_reptile(agent, tasks, start, args.steps, args.resets)
        epsilons.append(eps)
        base = score(agent, tasks, start, args.steps)
        checkpoints = list(range(args.every, args.steps * args.resets + 1, args.every))
        rows.append(
            {
                "start": start,
                "initial_loss": base,
                "cts": {c: score(agent, tasks, cts_path[c - 1], args.steps) for c in checkpoints},
                "cts_accurate": {c: score(agent, tasks, acc_path[c - 1], args.steps) for c in checkpoints},
                "reptile": {
                    args.steps * (r + 1): score(agent, tasks, p, args.steps) for r, p in enumerate(rep_path)
                },
            }
        )
    summary = summarise(rows, epsilons)
    result = {
        "command": "python benchmarks/cts_himmelblau.py",
        "setup": {
            "dist": dist.id,
            "inner": "SGD momentum 0.9, lr 0.05",
            "meta": "SGD lr 0.1",
            "K": args.steps,
            "resets": args.resets,
            "starts": STARTS,
        },
        "protocols": {dist.id: dist.protocol.hash},
        "split_hash": dist.split_hash(),
        "summary": summary,
        "runs": rows,
        "epsilon_per_start": epsilons,
        "seconds": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(summary, out / "result.png")
    for method in ("cts", "cts_accurate", "reptile"):
        for step, (mean, half) in summary[method].items():
            if int(step) % args.steps == 0:
                print(f"{method:<13} after {step:>4} inner steps: loss {mean:8.3f} ± {half:.3f}")


def summarise(rows: list[dict], epsilons: list) -> dict:
    from metaenvs.metrics import mean_ci

    out: dict = {}
    for method in ("cts", "cts_accurate", "reptile"):
        steps = rows[0][method].keys()
        out[method] = {str(s): mean_ci([r[method][s] for r in rows]) for s in steps}
    eps = np.array(epsilons, dtype=np.float64)  # start x reset x k
    out["epsilon_mean_by_k"] = eps.mean(axis=(0, 1)).tolist()
    out["epsilon_mean_by_reset_and_k"] = eps.mean(axis=0).tolist()
    out["initial_loss"] = mean_ci([r["initial_loss"] for r in rows])
    return out


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    for method, style in (("cts", "-o"), ("cts_accurate", "--"), ("reptile", "-s")):
        steps = [int(s) for s in summary[method]]
        mean = np.array([summary[method][str(s)][0] for s in steps])
        half = np.nan_to_num(np.array([summary[method][str(s)][1] for s in steps]))
        ax.plot(steps, mean, style, label=method, markersize=3)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("cumulative inner steps per task")
    ax.set_ylabel("task-average loss after 100 steps")
    ax.set_yscale("log")
    ax.set_title(f"Rotated Himmelblau, {len(STARTS)} starts (mean ± 95% CI)")
    ax.legend()
    for r, eps in enumerate(summary["epsilon_mean_by_reset_and_k"]):
        bx.plot(range(1, len(eps) + 1), eps, label=f"reset {r + 1}")
    bx.set_xlabel("k (inner steps since reset)")
    bx.set_ylabel("approximation error ε_k")
    bx.set_title("CTS shifting error")
    bx.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
