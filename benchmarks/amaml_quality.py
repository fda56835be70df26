"""Held-out nRMSE after fine-tuning from each method's initialization (A-MAML, Figure 2 direction).

Usage:
    python benchmarks/amaml_quality.py --workers 16 --out benchmarks/results/amaml_quality

Setup as in the paper: inner SGD at lr 0.01 for ``--inner-steps`` steps (200; MAML meta-trains with a
tenth of them, as in the paper's tables), meta-batch 5,
Adam meta lr 1e-3 for every method, ``--seeds`` meta-training seeds (5), on ``Synthetic/CosMixture{N}shot-v0``
and ``Synthetic/Alpine{N}shot-v0``. Each initialization is fine-tuned on the 100 held-out
functions (full-batch SGD, so one evaluation seed suffices) and scored by nRMSE on
the 31 x 31 test grid. Meta steps are ``--meta-steps`` (far fewer than the paper's).
Runs are spread over ``--workers`` processes (one torch thread each).

Writes ``result.json`` and ``result.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

METHODS = {
    "maml": {"meta_lr": 1e-3, "meta_optimizer": "adam"},
    "fomaml": {"meta_lr": 1e-3, "meta_optimizer": "adam"},
    "imaml": {"meta_lr": 1e-3, "meta_optimizer": "adam", "reg": 1.0, "cg_steps": 5},
    "amaml": {"meta_lr": 1e-3, "meta_optimizer": "adam", "step": 0.01, "solver": "rk4"},
    "reptile": {"meta_lr": 1e-3, "meta_optimizer": "adam", "schedule": "constant"},
    "scratch": {},
}


def one_run(job: tuple[str, str, int, int, int]) -> dict:
    dist_id, method, seed, meta_steps, inner_steps = job
    torch.set_num_threads(1)
    import metaenvs
    from agents import SupervisedAgent
    from agents.parameters import snapshot
    from baselines import make_meta_learner, meta_train
    from metaenvs.evaluation import evaluate

    dist = metaenvs.make(dist_id)
    agent = SupervisedAgent.for_distribution(dist, seed=seed, lr=0.01)
    t0 = time.perf_counter()
    if method == "scratch":
        init = snapshot(agent.model)
    else:
        learner = make_meta_learner(method, **METHODS[method])
        init = meta_train(
            agent,
            dist,
            learner,
            meta_steps=meta_steps,
            meta_batch_size=5,
            inner_steps=max(1, inner_steps // 10) if method == "maml" else inner_steps,
            seed=seed,
            progress=False,
        ).init
    seconds = time.perf_counter() - t0
    protocol = dist.protocol.customised(budget=inner_steps, seeds=(0,))
    result = evaluate(agent, dist, init, protocol)
    return {
        "dist": dist_id,
        "method": method,
        "seed": seed,
        "nrmse": float(np.mean(result.scores("final"))),
        "auc": float(np.mean(result.scores("auc"))),
        "train_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--meta-steps", type=int, default=100)
    parser.add_argument("--inner-steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--families", default="CosMixture,Alpine")
    parser.add_argument("--out", default="benchmarks/results/amaml_quality")
    args = parser.parse_args()
    import metaenvs
    from baselines.trivial import baselines_for, make_baseline
    from metaenvs.evaluation import evaluate
    from metaenvs.metrics import mean_ci

    dists = [f"Synthetic/{f}{args.shots}shot-v0" for f in args.families.split(",")]
    jobs = [
        (d, m, s, args.meta_steps, args.inner_steps)
        for d in dists
        for m in METHODS
        for s in range(args.seeds)
    ]
    jobs.sort(key=lambda j: j[1] == "scratch")  # long runs first
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        runs = list(pool.map(one_run, jobs))
    summary = {
        d: {m: mean_ci([r["nrmse"] for r in runs if r["dist"] == d and r["method"] == m]) for m in METHODS}
        for d in dists
    }
    protocols, trivial = {}, {}
    for d in dists:  # the trivial baselines under the same protocol as every initialization
        dist = metaenvs.make(d)
        protocol = dist.protocol.customised(budget=args.inner_steps, seeds=(0,))
        protocols[d] = protocol.hash
        trivial[d] = {
            b: float(np.mean(evaluate(make_baseline(b, dist), dist, None, protocol).scores("final")))
            for b in baselines_for(dist)
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = (
        f"python benchmarks/amaml_quality.py --shots {args.shots} --meta-steps {args.meta_steps} "
        f"--inner-steps {args.inner_steps} --seeds {args.seeds}"
    )
    (out / "result.json").write_text(
        json.dumps(
            {
                "command": command,
                "settings": METHODS,
                "maml_inner_steps": max(1, args.inner_steps // 10),
                "protocols": protocols,
                "summary": summary,
                "trivial_baselines": trivial,
                "runs": runs,
                "seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
    )
    plot(summary, out / "result.png", args)
    for d, rows in summary.items():
        for m, (mean, half) in rows.items():
            print(f"{d:<32} {m:<8} nRMSE {mean:.4f} ± {half:.4f}")


def plot(summary: dict, path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4), dpi=120, squeeze=False)
    for ax, (dist, rows) in zip(axes[0], summary.items(), strict=True):
        ax.bar(
            list(rows),
            [v[0] for v in rows.values()],
            yerr=[np.nan_to_num(v[1]) for v in rows.values()],
            capsize=4,
            alpha=0.8,
        )
        ax.set_title(f"{dist}\n{args.meta_steps} meta steps, {args.inner_steps} inner steps")
        ax.set_ylabel("held-out nRMSE (mean ± 95% CI over seeds)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
