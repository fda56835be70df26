"""Leap across Atari games (Flennerhag et al. 2019, Fig. 3): meta-train, then learn held-out games.

Usage:
    python benchmarks/atari_leap.py --config tiny       # CI smoke run, a few minutes on 2 CPU cores
    python benchmarks/atari_leap.py --config reduced    # about an hour on one GPU box
    python benchmarks/atari_leap.py --config paper      # the paper's scale (use the Ray executor)
    python benchmarks/atari_leap.py --config 100k --torch-threads 2   # Atari-100k board entries, CPU
    python benchmarks/atari_leap.py --config my.json --out DIR

A config (``benchmarks/configs/atari_leap_<name>.json``) names the distribution, the
algorithms and their settings (Leap with the d2 metric on the encoder only, Reptile on the
encoder, scratch), meta steps, games per meta-batch and frames per game, and the held-out
evaluation (frames and seeds). For each algorithm and run seed the script

1. meta-trains on the pool's training games with :func:`baselines.meta_train` (progress
   shows frames, fps and the meta step; checkpoints every meta step, so a killed run
   started again with the same command resumes);
2. trains from the initialization on every held-out game for the evaluation budget and
   seeds (:func:`metaenvs.evaluation.evaluate`), keeping the learning curve against frames;
3. scores each game x seed by the AUC of its training curve and the final raw score (mean of
   the last episodes of training, Machado et al. 2018) and its human-normalised value, and
   aggregates across games x seeds with the IQM and a stratified-bootstrap 95% CI.

Writes ``eval_<algo>_<seed>.json`` (the leaderboard's result files), ``result.json`` and
``result.png`` (held-out learning curves against frames, as the paper's Fig. 3).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import make_agent
from baselines import make_meta_learner, meta_train
from metaenvs.aggregates import stratified_bootstrap_ci
from metaenvs.evaluation import evaluate
from metaenvs.io import write_json_atomic

CONFIGS = Path(__file__).parent / "configs"
RESULTS = Path(__file__).parent / "results"


def load_config(name: str) -> dict:
    path = Path(name) if name.endswith(".json") else CONFIGS / f"atari_leap_{name}.json"
    return json.loads(path.read_text())


def build_agent(dist, config: dict, seed: int):
    options = dict(config.get("agent", {}))
    if options.get("device") == "auto":
        options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return make_agent(dist, seed=seed, **options)


def meta_train_init(dist, config: dict, algo: str, seed: int, run_dir: Path, progress: bool):
    """The initialization of ``algo`` (``None`` for scratch), meta-trained (or resumed) in ``run_dir``."""
    if algo == "scratch":
        return None
    agent = build_agent(dist, config, seed)
    result = meta_train(
        agent,
        dist,
        make_meta_learner(algo, **config["algorithms"][algo]),
        meta_steps=config["meta_steps"],
        meta_batch_size=config["meta_batch"],
        inner_steps=config["frames_per_game"] // dist.frames_per_step,
        seed=seed,
        out_dir=run_dir,
        checkpoint_every=1,
        progress=progress,
    )
    return str(result.init_path)


def held_out(dist, config: dict, algo: str, seed: int, init, out: Path, progress: bool) -> dict:
    """Train from ``init`` on every held-out game for the evaluation budget; the result file's dict."""
    path = out / f"eval_{algo}_{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    if config["eval"] == "protocol":  # the official protocol, uncut: results go to the board
        protocol = dist.protocol
    else:
        protocol = dist.protocol.customised(
            budget=config["eval"]["frames"] // dist.frames_per_step, seeds=tuple(config["eval"]["seeds"])
        )
    agent = build_agent(dist, config, seed)
    command = "python benchmarks/atari_leap.py " + " ".join(sys.argv[1:])
    return evaluate(agent, dist, init, protocol, out=path, progress=progress, commands=[command]).to_dict()


def random_policy(dist, out: Path) -> dict:
    """The trivial baseline under the evaluation protocol: uniform random actions for the protocol's budget
    on every held-out game and seed, scored as the protocol scores a run (its last training episodes)."""
    path = out / "random_policy.json"
    if path.exists():
        return json.loads(path.read_text())
    from metaenvs.seeding import derive_seed

    protocol, n_envs = dist.protocol, dist.protocol.agent["n_envs"]
    per_game: dict[str, list[float]] = {}
    for task in dist.tasks(protocol.split):
        for seed in protocol.seeds:
            env = task.make_vector_env(n_envs)
            env.reset(seed=derive_seed(seed, 1) % 2**31)
            rng = np.random.default_rng(seed)
            returns: list[float] = []
            for _ in range(protocol.budget // n_envs):
                _, _, term, trunc, info = env.step(rng.integers(env.single_action_space.n, size=n_envs))
                done = np.logical_or(term, trunc)
                returns += [float(r) for r in info["episode"]["r"][done]] if done.any() else []
            env.close()
            last = returns[-protocol.agent["eval_episodes"] :]
            per_game.setdefault(task.params["game"], []).append(float(np.mean(last)))
    normalised = {
        g: [dist.normalize_score(t, v) for v in per_game[g]]
        for g, t in ((t.params["game"], t) for t in dist.tasks(protocol.split))
    }
    record = {"final": per_game, "hns": normalised}
    write_json_atomic(path, record)
    return record


def scores(result: dict) -> dict[str, dict[str, list[float]]]:
    """``{"auc"|"final"|"hns": {game: [per seed]}}`` from a result file's records (``evaluate`` wrote the
    human-normalised ``normalized_final``; ``None`` for a game without a reference)."""
    out: dict[str, dict[str, list[float]]] = {"auc": {}, "final": {}, "hns": {}}
    for record in result["records"]:
        game = record["task_id"].split("/")[-1]
        hns = record.get("normalized_final")
        out["auc"].setdefault(game, []).append(record["auc"])
        out["final"].setdefault(game, []).append(record["final"])
        out["hns"].setdefault(game, []).append(np.nan if hns is None else hns)
    return out


def aggregate(per_game: dict[str, list[float]], seed: int) -> dict:
    """IQM with a stratified-bootstrap 95% CI across games x seeds (finite values only)."""
    finite = {g: [v for v in vs if np.isfinite(v)] for g, vs in per_game.items()}
    finite = {g: vs for g, vs in finite.items() if vs}
    if not finite:
        return {"iqm": None, "ci95": None, "n": 0}
    estimate, low, high = stratified_bootstrap_ci(finite, "iqm", rng=np.random.default_rng(seed))
    return {"iqm": estimate, "ci95": [low, high], "n": sum(len(v) for v in finite.values())}


def curves_by_game(dist, result: dict) -> dict[str, list[dict]]:
    """Learning curves against frames, per held-out game."""
    out: dict[str, list[dict]] = {}
    for record in result["records"]:
        curve = record["curve"]
        frames = [s * dist.frames_per_step for s in curve["steps"]]
        game = record["task_id"].split("/")[-1]
        out.setdefault(game, []).append({"frames": frames, "return": curve["values"]})
    return out


def plot(curves: dict[str, dict[str, list[dict]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = sorted({g for per_algo in curves.values() for g in per_algo})
    fig, axes = plt.subplots(1, len(games), figsize=(5 * len(games), 3.6), squeeze=False)
    for ax, game in zip(axes[0], games, strict=True):
        for algo, per_game in sorted(curves.items()):
            for i, run in enumerate(per_game.get(game, [])):
                ax.plot(run["frames"], run["return"], color=COLORS.get(algo, "k"), alpha=0.7,
                        label=algo if i == 0 else None)  # fmt: skip
        ax.set_title(f"{game} (held out)")
        ax.set_xlabel("frames")
        ax.set_ylabel("raw episode return (training)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLORS = {"leap": "tab:red", "reptile": "tab:blue", "scratch": "tab:grey"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny", help="tiny | reduced | paper | path to a JSON config")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/atari_leap_<name>")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)  # a benchmark setting, not the library's
    config = load_config(args.config)
    out = Path(args.out or RESULTS / f"atari_leap_{config['name']}")
    out.mkdir(parents=True, exist_ok=True)
    dist = metaenvs.make(config["dist"])
    summary: dict = {}
    curves: dict = {}
    for algo in config["algorithms"]:
        for seed in config["run_seeds"]:
            run_dir = out / "runs" / f"{algo}_{seed}"
            init = meta_train_init(dist, config, algo, seed, run_dir, not args.no_progress)
            result = held_out(dist, config, algo, seed, init, out, not args.no_progress)
            per = scores(result)
            summary.setdefault(algo, {})[seed] = {
                "auc": aggregate(per["auc"], seed),
                "final_raw": aggregate(per["final"], seed),
                "human_normalised": aggregate(per["hns"], seed),
                "per_game": per,
                "protocol_hash": result["protocol_hash"],
            }
            for game, runs in curves_by_game(dist, result).items():
                curves.setdefault(algo, {}).setdefault(game, []).extend(runs)
    if config["eval"] == "protocol":  # a trivial baseline under the same protocol
        baseline = random_policy(dist, out)
        summary["random_policy"] = {
            0: {
                "final_raw": aggregate(baseline["final"], 0),
                "human_normalised": aggregate(baseline["hns"], 0),
                "per_game": baseline,
            }
        }
    write_json_atomic(
        out / "result.json",
        {
            "command": "python benchmarks/atari_leap.py " + " ".join(sys.argv[1:]),
            "config": config,
            "dist": dist.id,
            "split_hash": dist.split_hash(),
            "paper": {
                "source": "Flennerhag et al., ICLR 2019, Fig. 3 (Atari, held-out games)",
                "claim": "a Leap initialization learns the held-out games faster than a random one",
            },
            "summary": summary,
        },
    )
    plot(curves, out / "result.png")
    keys = ("auc", "final_raw", "human_normalised")
    brief = {
        a: {s: {k: v[k] for k in keys if k in v} for s, v in runs.items()} for a, runs in summary.items()
    }
    print(json.dumps(brief, indent=2))


if __name__ == "__main__":
    main()
