"""Meta-World ML1 / ML10: meta-train PPO initializations, then adapt to the held-out tasks.

Usage:
    python benchmarks/metaworld.py --config tiny                           # a smoke run, ~2 minutes
    python benchmarks/metaworld.py --config cpu --dist MetaWorld/ML1-reach-v3   # ~1 hour on one core
    python benchmarks/metaworld.py --config cpu --dist MetaWorld/ML10-v3
    python benchmarks/metaworld.py --config my.json --out DIR

A config (``benchmarks/configs/metaworld_<name>.json``) names the distributions, the meta-learners and
their settings, the meta-training budget (meta steps x tasks per meta-batch x timesteps per task) and
the run seeds. For each distribution, learner and run seed the script

1. meta-trains the protocol's PPO agent on the train split with :func:`baselines.meta_train`
   (checkpointed every meta step: a killed run started again with the same command resumes);
   ``scratch`` has no meta-training: every seed starts from a fresh random policy;
2. evaluates the initialization under the distribution's official protocol
   (:func:`metaenvs.evaluation.evaluate`: every held-out task x every protocol seed, PPO for the
   protocol's budget, then its evaluation episodes), writing the result file the board takes;
3. aggregates success rate and return over tasks x seeds with the IQM, the mean and bootstrap 95%
   CI, the board's statistic (:func:`metaenvs.aggregates.summarize`), and averages the held-out training
   curves (success of each training episode, against env steps).

Writes ``<dist>/eval_<algo>_<seed>.json``, ``<dist>/result.json`` and ``<dist>/curves.png``. The
summary states the meta-training budget as a fraction of the Meta-World paper's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its own name would shadow the
# `metaworld` package: drop the folder (this script imports nothing from it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import torch

import metaenvs
from agents import make_agent
from agents.rl2 import RL2
from baselines import make_meta_learner, meta_train
from metaenvs.aggregates import summarize
from metaenvs.evaluation import evaluate
from metaenvs.io import load_initialization, save_initialization, write_json_atomic

CONFIGS = Path(__file__).parent / "configs"
RESULTS = Path(__file__).parent / "results" / "metaworld"
PAPER_META_TRAINING_STEPS = 10_000_000
"""Env steps of meta-training behind the Meta-World paper's ML1 / ML10 curves (Yu et al. 2019, Fig. 6-7
run their on-policy meta-learners for 1e7 steps and more); the summary gives the fraction of it used."""


def load_config(name: str) -> dict:
    path = Path(name) if name.endswith(".json") else CONFIGS / f"metaworld_{name}.json"
    return json.loads(path.read_text())


def initialization(dist, config: dict, algo: str, seed: int, run_dir: Path, progress: bool) -> str | None:
    """Path of ``algo``'s initialization (``None`` for scratch), meta-trained or resumed in ``run_dir``."""
    if algo == "scratch":
        return None
    agent = make_agent(dist, seed=seed)
    result = meta_train(
        agent,
        dist,
        make_meta_learner(algo, dist, **config["algorithms"][algo]),
        meta_steps=config["meta_steps"],
        meta_batch_size=config["meta_batch"],
        inner_steps=config.get("inner_steps", dist.protocol.budget),
        seed=seed,
        out_dir=run_dir,
        checkpoint_every=1,
        progress=progress,
    )
    return str(result.init_path)


def rl2_initialization(dist, config: dict, seed: int, run_dir: Path) -> str:
    """RL²'s meta-trained recurrent policy (sb3-contrib RecurrentPPO on train-split trials), saved once."""
    path = run_dir / "init.safetensors"
    if not path.exists():
        agent = RL2.for_protocol(dist, seed=seed, **config["algorithms"]["rl2"].get("agent", {}))
        curve = agent.meta_train(dist, config["algorithms"]["rl2"]["meta_timesteps"], seed=seed)
        tensors = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
        card = {"algorithm": "rl2", "dist_id": dist.id, "seed": seed, "agent": agent.hyperparameters()}
        card["meta_training_curve"] = curve.to_dict()
        save_initialization(path, tensors, card)
    return str(path)


def held_out(dist, config: dict, algo: str, seed: int, init: str | None, path: Path, progress: bool) -> dict:
    """The official protocol's result from ``init`` (read back if ``path`` already holds it); RL²'s under
    the custom protocol with the same tasks, budget, seeds and metric (its agent is not the recipe's)."""
    if path.exists():
        return json.loads(path.read_text())
    command = f"python benchmarks/metaworld.py {' '.join(sys.argv[1:])}"
    if algo == "rl2":
        agent = RL2.for_protocol(dist, seed=seed, **config["algorithms"]["rl2"].get("agent", {}))
        run = evaluate(agent, dist, init, out=path, progress=progress, commands=[command], custom=True)
        return run.to_dict()
    agent = make_agent(dist, seed=seed)
    return evaluate(agent, dist, init, out=path, progress=progress, commands=[command]).to_dict()


def zero_shot(dist, init: str | None) -> dict:
    """Trivial baselines on the held-out tasks: the initialization's policy with no adaptation at all
    (each protocol seed's evaluation episodes), and a policy that never moves (zero actions)."""
    tensors = None if init is None else load_initialization(init)[0]
    per_task: dict[str, list[float]] = {}
    for task in dist.tasks(dist.protocol.split):
        for seed in dist.protocol.seeds:
            agent = make_agent(dist, seed=seed)
            if tensors is not None:
                agent.set_parameters(tensors)
            per_task.setdefault(task.id, []).append(agent.evaluate(task, seed=seed)["success_rate"])
    return per_task


def idle(dist) -> dict:
    """Success of the zero-action policy per held-out task (the env is deterministic: one episode)."""
    out = {}
    for task in dist.tasks(dist.protocol.split):
        env = task.make_env()
        env.reset(seed=0)
        truncated, info = False, {}
        while not truncated:
            _, _, _, truncated, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        out[task.id] = [float(info["is_success"])] * len(dist.protocol.seeds)
        env.close()
    return out


def summarise(per_task: dict[str, list[float]], metric: str = "success_rate") -> dict:
    """The board's aggregates (:func:`metaenvs.aggregates.summarize`: IQM and mean with 95% CIs of a
    bootstrap over tasks, then runs) of ``task -> [score per seed]``."""
    records = [
        {"task_id": task, "seed": seed, "final": float(value)}
        for task, values in per_task.items()
        for seed, value in enumerate(values)
    ]
    return summarize(records, metric=metric, higher_is_better=True, resample_tasks=True)


def aggregate(result: dict, key: str) -> dict:
    """:func:`summarise` of one score of a result file (``final``: the protocol metric), per task too."""
    per_task: dict[str, list[float]] = {}
    for record in result["records"]:
        value = record["final"] if key == "final" else record["scores"][key]
        per_task.setdefault(record["task_id"], []).append(float(value))
    out = summarise(per_task, result["protocol"]["metric"] if key == "final" else key)
    out["per_task_mean"] = {task: float(np.mean(v)) for task, v in sorted(per_task.items())}
    return out


def cached(path: Path, compute) -> dict:
    """``compute()``, written to ``path`` once and read back after (so a rerun finishes what is missing)."""
    if not path.exists():
        write_json_atomic(path, compute())
    return json.loads(path.read_text())


def mean_curve(result: dict, field: str, grid: np.ndarray) -> list[float]:
    """Held-out training curve of ``field`` (``successes`` or ``values``), mean over runs, on ``grid``."""
    rows = []
    for record in result["records"]:
        steps, values = record["curve"]["steps"], record["curve"].get(field, [])
        if values:
            rows.append(np.interp(grid, steps, values))
    return np.mean(rows, axis=0).tolist() if rows else []


def plot(curves: dict, grid: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for algo, by_field in sorted(curves.items()):
        axes[0].plot(grid, by_field["successes"], label=algo)
        axes[1].plot(grid, by_field["values"], label=algo)
    axes[0].set_ylabel("success of training episodes")
    axes[1].set_ylabel("training episode return")
    for ax in axes:
        ax.set_xlabel("env steps on the held-out task")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(dist_id: str, config: dict, out: Path, progress: bool) -> dict:
    dist = metaenvs.make(dist_id, **config.get("dist_kwargs", {}))
    out.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0, dist.protocol.budget, 21)
    summary, curves, timings = {}, {}, {}
    for algo in config["algorithms"]:
        for seed in config["run_seeds"]:
            t0 = time.perf_counter()
            run_dir = out / "runs" / f"{algo}_{seed}"
            if algo == "rl2":
                init = rl2_initialization(dist, config, seed, run_dir)
            else:
                init = initialization(dist, config, algo, seed, run_dir, progress)
            t1 = time.perf_counter()
            result = held_out(dist, config, algo, seed, init, out / f"eval_{algo}_{seed}.json", progress)
            timings[f"{algo}_{seed}"] = {"meta_train_s": t1 - t0, "evaluate_s": time.perf_counter() - t1}
            summary.setdefault(algo, {})[seed] = {
                "success_rate": aggregate(result, "final"),
                "return": aggregate(result, "return"),
                "init": init,
                "protocol": result["protocol"]["name"],
                "protocol_hash": result["protocol_hash"],
                "split_hash": result["split_hash"],
            }
            if algo != "rl2":
                zero = cached(out / f"zero_shot_{algo}_{seed}.json", lambda init=init: zero_shot(dist, init))
                summary[algo][seed]["success_rate_without_adaptation"] = summarise(zero)
            curves[f"{algo}_{seed}"] = {f: mean_curve(result, f, grid) for f in ("successes", "values")}
    summary["idle"] = {0: {"success_rate": summarise(cached(out / "idle.json", lambda: idle(dist)))}}
    steps = 0 if config.get("meta_steps") is None else config["meta_steps"] * config["meta_batch"]
    meta_steps = steps * config.get("inner_steps", dist.protocol.budget)
    record = {
        "command": "python benchmarks/metaworld.py " + " ".join(sys.argv[1:]),
        "config": config,
        "dist": dist.id,
        "metaworld": dist.protocol.env["metaworld"],
        "protocol": dist.protocol.to_dict(),
        "split_hash": dist.split_hash(),
        "meta_training_env_steps_per_learner": meta_steps,
        "fraction_of_paper_meta_training": meta_steps / PAPER_META_TRAINING_STEPS,
        "summary": summary,
        "curves": {"env_steps": grid.tolist(), **curves},
        "timings_s": timings,
        "torch_threads": torch.get_num_threads(),
    }
    write_json_atomic(out / "result.json", record)
    plot(curves, grid.tolist(), out / "curves.png", f"{dist.id} (held out)")
    return record


KEYS = ("success_rate", "return", "success_rate_without_adaptation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny", help="tiny | cpu | path to a JSON config")
    parser.add_argument("--dist", default=None, help="one of the config's distributions (default: all)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/metaworld/<config>")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (a benchmark setting)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    config = load_config(args.config)
    root = Path(args.out or RESULTS / config["name"])
    for dist_id in [args.dist] if args.dist else config["dists"]:
        record = run(dist_id, config, root / dist_id.split("/")[-1], not args.no_progress)
        brief = {
            algo: {s: {k: (v[k]["mean"], v[k]["iqm"]) for k in KEYS if k in v} for s, v in r.items()}
            for algo, r in record["summary"].items()
        }
        print(dist_id, json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
