"""Leap's Figure 2 on Omniglot, at reduced scale: how pretraining helps as alphabets grow.

Usage (one command; resumable, each finished run is kept under ``--out/runs``):
    python benchmarks/leap_omniglot.py --out benchmarks/results/leap_omniglot

For every number of pretraining alphabets n in ``--alphabets`` (``Vision/OmniglotAlphabets-v0``
with ``num_alphabets=n``), every algorithm (Leap, Reptile, FOMAML, multi-headed fine-tuning
"mtl") and every run seed, the initialization is meta-trained with 100 inner SGD steps at
lr 0.1 and batch 20 per alphabet, then evaluated on the 10 listed held-out alphabets (same
inner loop) with ``--eval-seeds`` agent seeds. "scratch" (no pretraining) does not depend on n.
Reported: training-curve AUC (Leap's ``compute_auc``: mean of the curve) and final test
error, mean and Student-t 95% CI over run seeds. Writes ``result.json`` and ``result.png``.

Paper (Flennerhag et al., ICLR 2019, Fig. 2): Leap is best once there are more than 4
pretraining alphabets. Their scale: 64-filter conv4, 1000 meta steps, meta-batch 20.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from curves import mean_curve, run_with_curve

import metaenvs
from metaenvs.evaluation import evaluate
from metaenvs.io import write_json_atomic
from metaenvs.metrics import mean_ci

SETTINGS = {  # as in Leap's code (amzn/metalearn-leap src/omniglot/main.py): SGD at 0.1 for every method
    "leap": {"meta_lr": 0.1, "meta_optimizer": "sgd"},
    "reptile": {"meta_lr": 0.1},
    "fomaml": {"meta_lr": 0.1, "meta_optimizer": "sgd"},
    # Leap's fine-tuning baseline: multi-headed pretraining of the body with SGD at 0.1 (it was Adam at
    # 1e-3 here before, which scored worse than no pretraining).
    "mtl": {"meta_lr": 0.1, "meta_optimizer": "sgd"},
}


def distribution(n: int, augment: int) -> Any:
    return metaenvs.make("Vision/OmniglotAlphabets-v0", num_alphabets=n, augment=augment)


def eval_protocol(dist: Any, eval_seeds: int) -> Any:
    """The official protocol's tasks, budget and metric, with ``eval_seeds`` seeds (custom if fewer)."""
    return dist.protocol.customised(seeds=tuple(range(eval_seeds)))


def one_run(algo: str, n: int, seed: int, args: argparse.Namespace, run_dir: Path) -> dict:
    dist = distribution(n, args.augment)
    return run_with_curve(
        algo,
        dist,
        seed,
        settings=SETTINGS.get(algo, {}),
        model_spec={"type": "conv4", "channels": args.channels},
        meta_steps=args.meta_steps,
        meta_batch_size=min(args.meta_batch, n) if algo != "mtl" else args.meta_batch,
        every=args.curve_every,
        protocol=eval_protocol(dist, args.eval_seeds),
        curve_protocol=dist.protocol.customised(split="val", seeds=(0,)),  # the 6 val alphabets
        run_dir=run_dir,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alphabets", default="1,5,25")
    parser.add_argument("--algos", default="leap,reptile,fomaml,mtl,scratch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--meta-steps", type=int, default=20)
    parser.add_argument("--meta-batch", type=int, default=5)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--eval-seeds", type=int, default=1)
    parser.add_argument("--curve-every", type=int, default=10, help="meta steps between val scores")
    parser.add_argument("--augment", type=int, default=1, help="random affine copies per training image")
    parser.add_argument("--out", default="benchmarks/results/leap_omniglot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    counts = [int(v) for v in args.alphabets.split(",")]
    algos = args.algos.split(",")
    runs = []
    for n in counts:
        for algo in algos:
            for seed in range(args.seeds):
                key = "scratch" if algo == "scratch" else f"{algo}-n{n}"
                path = out / "runs" / f"{key}-s{seed}.json"
                if not path.is_file():
                    write_json_atomic(path, one_run(algo, n, seed, args, path.with_suffix("")))
                    record = json.loads(path.read_text())
                    print(f"{key} seed {seed}: error {record['final_error']:.3f} AUC {record['auc']:.3f} "
                          f"({record['train_seconds']:.0f} s)", flush=True)  # fmt: skip
                runs.append({**json.loads(path.read_text()), "alphabets": n})
    summary = {
        algo: {
            str(n): {
                key: mean_ci([r[key] for r in runs if r["algo"] == algo and r["alphabets"] == n])
                for key in ("final_error", "auc")
            }
            for n in counts
        }
        for algo in algos
    }
    payload = {
        "command": "python benchmarks/leap_omniglot.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "dist": "Vision/OmniglotAlphabets-v0",
        "split_hash": metaenvs.make("Vision/OmniglotAlphabets-v0").split_hash(),
        "protocols": {
            str(n): eval_protocol(distribution(n, args.augment), args.eval_seeds).hash for n in counts
        },
        "baselines": baselines(counts, args),
        "settings": SETTINGS,
        "scale": {
            "meta_steps": args.meta_steps,
            "meta_batch": args.meta_batch,
            "conv_channels": args.channels,
            "inner_steps": 100,
            "inner_lr": 0.1,
            "batch": 20,
            "eval_seeds_per_run": args.eval_seeds,
            "run_seeds": args.seeds,
            "augment": args.augment,
            "fraction_of_paper_meta_tasks": args.meta_steps * args.meta_batch / (1000 * 20),
        },
        "paper": {
            "source": "Flennerhag et al., ICLR 2019, Figure 2 (Omniglot)",
            "claim": "Leap outperforms Reptile, FOMAML, fine-tuning and no pretraining once there are "
            "more than 4 pretraining alphabets (AUC of the training curve and final test error)",
            "scale": "64 filters, 1000 meta steps, meta-batch 20, 100 inner steps, lr 0.1, batch 20",
        },
        "summary": summary,
        "runs": runs,
    }
    write_json_atomic(out / "result.json", payload)
    plot(summary, runs, counts, out / "result.png")
    for algo in algos:
        errors = [summary[algo][str(n)]["final_error"] for n in counts]
        cells = "  ".join(f"n={n}: err {m:.3f}±{h:.3f}" for n, (m, h) in zip(counts, errors, strict=True))
        print(f"{algo:<8} {cells}")


def baselines(counts: list[int], args: argparse.Namespace) -> dict:
    """The trivial baseline (nearest class centroid in pixel space) under each run's protocol."""
    from baselines.trivial import make_baseline

    out = {}
    for n in counts:
        dist = distribution(n, args.augment)
        result = evaluate(
            make_baseline("nearest_centroid", dist), dist, None, eval_protocol(dist, args.eval_seeds)
        )
        out[str(n)] = {"nearest_centroid": {"final_error": float(np.mean(result.scores("final")))}}
    return out


def plot(summary: dict, runs: list[dict], counts: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4), dpi=120)
    for ax, key, label in (
        (axes[0], "auc", "AUC of the training curve"),
        (axes[1], "final_error", "test error"),
    ):
        for algo, by_n in summary.items():
            means = np.array([by_n[str(n)][key][0] for n in counts])
            halves = np.array([by_n[str(n)][key][1] for n in counts])
            ax.errorbar(counts, means, yerr=halves, marker="o", capsize=3, label=algo)
        ax.set_xlabel("pretraining alphabets")
        ax.set_ylabel(label + " (held-out, mean ± 95% CI)")
        ax.set_xscale("log")
        ax.set_xticks(counts, [str(n) for n in counts])
    for algo in summary:  # the meta-training curves at the largest n (val alphabets, mean over seeds)
        curves = [r["meta_curve"] for r in runs if r["algo"] == algo and r["alphabets"] == counts[-1]]
        if curves and curves[0]:
            axes[2].plot(*mean_curve(curves), marker="o", label=algo)
    axes[2].set_xlabel("meta step")
    axes[2].set_ylabel(f"val error, n={counts[-1]} (1 seed per run, mean over runs)")
    axes[0].legend()
    fig.suptitle("Omniglot alphabets (Leap Fig. 2, reduced scale)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
