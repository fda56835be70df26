"""Leap against Reptile, FOMAML, fine-tuning (multi-task pretraining) and scratch on a synthetic family.

Usage:
    python benchmarks/leap_synthetic.py --out benchmarks/results/leap_synthetic

Each algorithm meta-trains from the agent's seeded initialization for every run
seed, then the initialization is evaluated with the distribution's protocol on all
held-out tasks for the protocol's seeds. Reported per algorithm: the mean over
runs of the held-out final score and training-curve AUC, with a Student-t 95% CI
across runs (and the CI pooled over runs x tasks x seeds).

Writes ``result.json`` and ``result.png`` into ``--out``.
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
from agents.parameters import snapshot
from baselines import make_meta_learner, meta_train
from metaenvs.evaluation import evaluate
from metaenvs.metrics import mean_ci

SETTINGS = {
    "leap": {"meta_lr": 0.01, "meta_optimizer": "sgd"},
    "reptile": {"meta_lr": 1.0, "schedule": "linear"},
    "fomaml": {"meta_lr": 1e-3, "meta_optimizer": "adam"},
    "mtl": {"meta_lr": 1e-3, "meta_optimizer": "adam"},
    "scratch": {},
}


def run(dist, algo: str, seed: int, meta_steps: int, meta_batch: int) -> dict:
    agent = make_agent(dist, seed=seed)
    t0 = time.perf_counter()
    if algo == "scratch":
        init = snapshot(agent.model)
    else:
        init = meta_train(
            agent,
            dist,
            make_meta_learner(algo, **SETTINGS[algo]),
            meta_steps=meta_steps,
            meta_batch_size=meta_batch,
            seed=seed,
            progress=False,
        ).init
    train_s = time.perf_counter() - t0
    result = evaluate(agent, dist, init)
    curves = np.array([r["curve"]["values"] for r in result.records])
    return {
        "algo": algo,
        "seed": seed,
        "final": float(np.mean(result.scores("final"))),
        "auc": float(np.mean(result.scores("auc"))),
        "finals": result.scores("final"),
        "aucs": result.scores("auc"),
        "mean_curve": curves.mean(axis=0).tolist(),
        "train_seconds": train_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dist", default="Synthetic/Sinusoid-v0")
    parser.add_argument("--meta-steps", type=int, default=500)
    parser.add_argument("--meta-batch", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--algos", default="leap,reptile,fomaml,mtl,scratch")
    parser.add_argument("--out", default="benchmarks/results/leap_synthetic")
    args = parser.parse_args()
    dist = metaenvs.make(args.dist)
    torch.set_num_threads(1)  # small models: one thread is fastest and avoids oversubscription
    runs = []
    for algo in args.algos.split(","):
        for seed in range(args.seeds):
            runs.append(run(dist, algo, seed, args.meta_steps, args.meta_batch))
            print(
                f"{algo} seed {seed}: final {runs[-1]['final']:.4f} ({runs[-1]['train_seconds']:.0f} s)",
                flush=True,
            )
    summary = {}
    for algo in args.algos.split(","):
        mine = [r for r in runs if r["algo"] == algo]
        summary[algo] = {
            key: {
                "mean_ci_across_runs": mean_ci([r[key] for r in mine]),
                "mean_ci_pooled": mean_ci([v for r in mine for v in r[key + "s"]]),
            }
            for key in ("final", "auc")
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = (
        f"python benchmarks/leap_synthetic.py --dist {args.dist} --meta-steps {args.meta_steps} "
        f"--meta-batch {args.meta_batch} --seeds {args.seeds}"
    )
    payload = {
        "command": command,
        "dist": args.dist,
        "protocol": dist.protocol.to_dict(),
        "protocol_hash": dist.protocol.hash,
        "settings": SETTINGS,
        "meta_steps": args.meta_steps,
        "meta_batch": args.meta_batch,
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if k not in ("finals", "aucs")} for r in runs],
    }
    (out / "result.json").write_text(json.dumps(payload, indent=2) + "\n")
    plot(summary, runs, dist.protocol.metric, out / "result.png")
    for algo, s in summary.items():
        (fm, fh), (am, ah) = s["final"]["mean_ci_across_runs"], s["auc"]["mean_ci_across_runs"]
        print(f"{algo:<8} final {dist.protocol.metric} {fm:.4f} ± {fh:.4f}   AUC {am:.4f} ± {ah:.4f}")


def plot(summary: dict, runs: list[dict], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = list(summary)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), dpi=120)
    for ax, key, label in ((axes[0], "final", f"held-out final {metric}"), (axes[1], "auc", "training AUC")):
        means = [summary[a][key]["mean_ci_across_runs"][0] for a in algos]
        halves = [summary[a][key]["mean_ci_across_runs"][1] for a in algos]
        ax.bar(algos, means, yerr=halves, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_ylabel(label + " (mean ± 95% CI over runs)")
    for algo in algos:
        curve = np.mean([r["mean_curve"] for r in runs if r["algo"] == algo], axis=0)
        axes[2].plot(curve, label=algo)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("inner step")
    axes[2].set_ylabel("training loss on held-out tasks")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
