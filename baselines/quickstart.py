"""`metaenvs quickstart`: Reptile against training from scratch on sinusoid regression.

Meta-trains Reptile on ``Synthetic/Sinusoid-v0``, evaluates the learned
initialization and fresh random initializations on the 100 held-out test
functions for the protocol's seeds, prints a comparison table (mean ± 95% CI
across tasks × seeds) and writes a PNG of the learning curves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

QUICKSTART_DIST = "Synthetic/Sinusoid-v0"


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    """A plain-text table of evaluation summaries: one row per method, IQM and mean with 95% bootstrap
    CIs of the ranked score (the normalised one where the protocol normalises), as the board shows.

    Args:
        rows: ``{"method": name, "summary": EvaluationResult.summary()}`` per method.
        metric: The protocol's metric (the column title).
    """
    from metaenvs.evaluation import format_interval

    key = "normalized_final" if all("normalized_final" in r["summary"].blocks for r in rows) else "final"
    title = rows[0]["summary"][key]["score"] if rows else metric
    header = (
        f"{'method':<12} {'IQM ' + title + ' [95% CI]':>30} {'mean [95% CI]':>30} {'tasks':>6} {'runs':>5}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        block = row["summary"][key]
        lines.append(
            f"{row['method']:<12} {format_interval(block['iqm']):>30} {format_interval(block['mean']):>30} "
            f"{block['n_tasks']:>6d} {block['n_runs']:>5d}"
        )
    direction = "higher" if rows and rows[0]["summary"][key]["higher_is_better"] else "lower"
    lines.append(f"({title} on held-out tasks after adaptation; {direction} is better)")
    return "\n".join(lines)


def plot_curves(results: dict[str, Any], path: Path, title: str) -> Path:
    """Mean training-loss curve (± 95% CI band) of each method against inner steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method, result in results.items():
        curves = np.array([r["curve"]["values"] for r in result.records], dtype=np.float64)
        mean = curves.mean(axis=0)
        half = 1.96 * curves.std(axis=0, ddof=1) / np.sqrt(len(curves))
        steps = np.arange(curves.shape[1])
        ax.plot(steps, mean, label=method)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.25)
    ax.set_xlabel("inner step")
    ax.set_ylabel("training MSE on held-out tasks' support sets\n(the table ranks test MSE)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def run_quickstart(
    out_dir: str | Path = "quickstart_out",
    meta_steps: int = 1000,
    meta_batch_size: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the quickstart; returns the summaries and the paths written."""
    import metaenvs
    from agents import make_agent
    from baselines import Reptile, meta_train
    from metaenvs.evaluation import evaluate

    out = Path(out_dir)
    t0 = time.perf_counter()
    dist = metaenvs.make(QUICKSTART_DIST, seed=seed)
    agent = make_agent(dist, seed=seed)
    trained = meta_train(
        agent,
        dist,
        Reptile(meta_lr=1.0),
        meta_steps=meta_steps,
        meta_batch_size=meta_batch_size,
        seed=seed,
        out_dir=out / "reptile",
        checkpoint_every=max(1, meta_steps // 10),
        progress=progress,
    )
    results = {
        "reptile": evaluate(agent, dist, trained.init_path, out=out / "reptile_eval.json", progress=progress),
        "scratch": evaluate(agent, dist, None, out=out / "scratch_eval.json", progress=progress),
    }
    rows = [{"method": m, "summary": r.summary()} for m, r in results.items()]
    png = plot_curves(
        results,
        out / "learning_curves.png",
        f"{QUICKSTART_DIST}: {len(dist.tasks('test'))} held-out tasks × {len(dist.protocol.seeds)} seeds",
    )
    return {
        "rows": rows,
        "table": format_table(rows, dist.protocol.metric),
        "png": png,
        "init": trained.init_path,
        "seconds": time.perf_counter() - t0,
    }
