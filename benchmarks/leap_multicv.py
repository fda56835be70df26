"""Leap's Multi-CV (leave one data set out) on the data sets on hand: MNIST, CIFAR-10 and digits.

Usage (one command; resumable, each finished run is kept under ``--out/runs``):
    python benchmarks/leap_multicv.py --out benchmarks/results/leap_multicv

For every held-out data set (``Vision/MultiCVLocal_<held>-v0``: the other two are the meta-train
tasks) and every algorithm (Leap, Reptile, multi-headed fine-tuning "mtl", and no pretraining
"scratch"), the initialization is meta-trained on both train data sets per meta step with
``--inner-steps`` SGD steps at the protocol's lr 0.1 and batch 32, with the held-out error (one
seed, the protocol's budget) after every ``--curve-every`` meta steps, then scored under the
official protocol (500 steps, 3 seeds). The nearest-centroid baseline is scored under the same
protocol. Writes ``result.json`` and ``result.png``.

The meta-training curve is measured on the held-out data set itself (these distributions have no
val split); it is reported, never used to pick a step.

Paper (Flennerhag et al., ICLR 2019, Sec. 4.2 and Table 2): on their pool of computer-vision data
sets, Leap's initialization trains each held-out data set faster (AUC) and to a lower error than
Reptile's, fine-tuning's and no pretraining. Their pool and model are larger than ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from curves import mean_curve, run_with_curve
from leap_omniglot import SETTINGS

import metaenvs
from metaenvs.evaluation import evaluate
from metaenvs.io import write_json_atomic
from metaenvs.metrics import mean_ci

HELD_OUT = ("mnist", "cifar10", "digits")


def dist_id(held: str) -> str:
    return f"Vision/MultiCVLocal_{held}-v0"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--held-out", default=",".join(HELD_OUT))
    parser.add_argument("--algos", default="leap,reptile,mtl,scratch")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--meta-steps", type=int, default=20)
    parser.add_argument("--inner-steps", type=int, default=100)
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/leap_multicv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    helds, algos = args.held_out.split(","), args.algos.split(",")
    runs = []
    for held in helds:
        dist = metaenvs.make(dist_id(held))
        curve_protocol = dist.protocol.customised(seeds=(0,))
        for algo in algos:
            for seed in range(args.seeds):
                path = out / "runs" / f"{held}-{algo}-s{seed}.json"
                if not path.is_file():
                    record = run_with_curve(
                        algo,
                        dist,
                        seed,
                        settings=SETTINGS.get(algo, {}),
                        model_spec=dict(dist.default_model),
                        meta_steps=args.meta_steps,
                        meta_batch_size=2,
                        every=args.curve_every,
                        protocol=dist.protocol,
                        curve_protocol=curve_protocol,
                        run_dir=path.with_suffix(""),
                        inner_steps=args.inner_steps,
                    )
                    write_json_atomic(path, {**record, "held_out": held})
                    err, auc, secs = record["final_error"], record["auc"], record["train_seconds"]
                    print(f"{held} {algo} s{seed}: error {err:.3f} AUC {auc:.3f} ({secs:.0f} s)", flush=True)
                runs.append(json.loads(path.read_text()))
    summary = {
        algo: {
            held: {
                key: mean_ci([r[key] for r in runs if (r["algo"], r["held_out"]) == (algo, held)])
                for key in ("final_error", "auc")
            }
            for held in helds
        }
        for algo in algos
    }
    baselines, protocols = {}, {}
    from baselines.trivial import make_baseline

    for held in helds:
        dist = metaenvs.make(dist_id(held))
        protocols[held] = dist.protocol.hash
        result = evaluate(make_baseline("nearest_centroid", dist), dist, None, dist.protocol)
        baselines[held] = {"nearest_centroid": {"final_error": float(np.mean(result.scores("final")))}}
    payload = {
        "command": "python benchmarks/leap_multicv.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "dists": {held: dist_id(held) for held in helds},
        "split_hashes": {held: metaenvs.make(dist_id(held)).split_hash() for held in helds},
        "protocols": protocols,
        "baselines": baselines,
        "settings": SETTINGS,
        "scale": {
            "meta_steps": args.meta_steps,
            "meta_batch": 2,
            "inner_steps": args.inner_steps,
            "eval_steps": 500,
            "conv_filters": 32,
            "run_seeds": args.seeds,
            "pool": list(HELD_OUT),
        },
        "paper": {
            "source": "Flennerhag et al., ICLR 2019, Section 4.2 and Table 2 (Multi-CV)",
            "claim": "Leap's initialization trains each held-out data set faster and to a lower error than "
            "Reptile's, fine-tuning's and no pretraining",
            "scale": "their own pool of computer-vision data sets (see the paper), a larger conv net",
        },
        "summary": summary,
        "runs": runs,
    }
    write_json_atomic(out / "result.json", payload)
    plot(runs, summary, helds, out / "result.png")
    for algo in algos:
        errors = {held: summary[algo][held]["final_error"] for held in helds}
        cells = "  ".join(f"{held}: err {m:.3f}±{h:.3f}" for held, (m, h) in errors.items())
        print(f"{algo:<8} {cells}")


def plot(runs: list[dict], summary: dict, helds: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(helds), figsize=(4 * len(helds), 3.6), dpi=120, squeeze=False)
    for ax, held in zip(axes[0], helds, strict=True):
        for algo in summary:
            curves = [r["meta_curve"] for r in runs if (r["algo"], r["held_out"]) == (algo, held)]
            if curves and curves[0]:
                ax.plot(*mean_curve(curves), marker="o", label=algo)
            else:
                ax.axhline(summary[algo][held]["final_error"][0], ls="--", color="grey", label=algo)
        ax.set_title(f"{held} held out")
        ax.set_xlabel("meta step")
        ax.set_ylabel("held-out error (1 seed)")
    axes[0][0].legend()
    fig.suptitle("Multi-CV leave-one-out (MNIST, CIFAR-10, digits): meta-training curves")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
