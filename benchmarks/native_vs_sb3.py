"""The native actor-critic against SB3 on CartPole: same initialization, same recipe, learning curves.

Usage:
    python benchmarks/native_vs_sb3.py [--timesteps 40000] [--seeds 5]

For A2C and PPO (SB3's defaults, 8 envs; PPO with 256-step rollouts so that a run has many updates),
and for each seed, one initialization (the native agent's ``reset(seed)``) is written into both
:class:`agents.NativeActorCritic` and :class:`agents.ActorCritic` (SB3), and each learns the first
held-out task of ``Control/CartPolePhysics-v0`` for the same timesteps. Reported per agent: the training
curve (mean return of the episodes ending in each of 20 windows), the final score (mean return of the
last 20 training episodes) and deterministic evaluation over 20 episodes, as means with Student-t 95%
CIs over seeds, and the CI of the native-minus-SB3 difference of final scores (paired by seed). The two are
not expected to agree bitwise (their action samples come from different generators), only in
distribution.

Writes ``benchmarks/results/native_vs_sb3/result.json`` and ``result.png``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents.actor_critic import ActorCritic
from agents.native import NativeActorCritic
from metaenvs.io import write_json_atomic
from metaenvs.metrics import mean_ci

RESULTS = Path(__file__).parent / "results" / "native_vs_sb3"
RECIPES = {"a2c": {}, "ppo": {"n_steps": 256, "batch_size": 64}}


def windows(curve, timesteps: int, n: int = 20) -> list[float]:
    edges = np.linspace(0, timesteps, n + 1)
    steps, values = np.asarray(curve.steps), np.asarray(curve.values)
    out = []
    for lo, hi in itertools.pairwise(edges):
        inside = values[(steps > lo) & (steps <= hi)]
        out.append(float(inside.mean()) if inside.size else float("nan"))
    return out


def one_run(algo: str, seed: int, timesteps: int, task, spaces) -> dict:
    kwargs = {"algo": algo, "n_envs": 8, "algo_kwargs": RECIPES[algo], "eval_episodes": 20}
    native = NativeActorCritic(*spaces, seed=seed, **kwargs)
    sb3 = ActorCritic(*spaces, seed=seed, **kwargs)
    sb3.set_parameters(dict(native.model.named_parameters()))  # the same initialization
    out = {}
    for name, agent in (("native", native), ("sb3", sb3)):
        curve = agent.learn(task, timesteps, seed=seed)
        out[name] = {
            "curve": windows(curve, timesteps),
            "final": float(np.mean(curve.values[-20:])),
            "evaluation": agent.evaluate(task, seed=seed)["return"],
        }
    native.close()
    return out


def ci(values: list[float]) -> dict:
    """Mean and its Student-t 95% CI over seeds."""
    mean, half = mean_ci(values)
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)  # a benchmark setting, equal for both agents
    dist = metaenvs.make("Control/CartPolePhysics-v0")
    task = dist.tasks("test")[0]
    env = task.make_env()
    spaces = (env.observation_space, env.action_space)
    env.close()
    summary, runs = {}, {}
    for algo in RECIPES:
        runs[algo] = [one_run(algo, seed, args.timesteps, task, spaces) for seed in range(args.seeds)]
        per = {name: [r[name] for r in runs[algo]] for name in ("native", "sb3")}
        summary[algo] = {
            name: {
                "final": ci([r["final"] for r in rows]),
                "evaluation": ci([r["evaluation"] for r in rows]),
            }
            for name, rows in per.items()
        }
        diff = [n["final"] - s["final"] for n, s in zip(per["native"], per["sb3"], strict=True)]
        summary[algo]["native_minus_sb3_final"] = ci(diff)
        low, high = summary[algo]["native_minus_sb3_final"]["ci95"]
        summary[algo]["same_band"] = bool(low <= 0 <= high)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "result.json",
        {
            "command": "python benchmarks/native_vs_sb3.py " + " ".join(sys.argv[1:]),
            "task": task.to_dict(),
            "settings": {"timesteps": args.timesteps, "seeds": args.seeds, "n_envs": 8, "recipes": RECIPES},
            "summary": summary,
            "runs": runs,
        },
    )
    plot(runs, args.timesteps, out / "result.png")
    print(json.dumps(summary, indent=1))


def plot(runs: dict, timesteps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(0, timesteps, 21)[1:]
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.5), squeeze=False)
    for ax, (algo, rows) in zip(axes[0], runs.items(), strict=True):
        for name, color in (("native", "tab:green"), ("sb3", "tab:blue")):
            curves = np.array([r[name]["curve"] for r in rows])
            ax.plot(x, np.nanmean(curves, 0), color=color, label=name)
            low, high = np.nanpercentile(curves, 25, 0), np.nanpercentile(curves, 75, 0)
            ax.fill_between(x, low, high, color=color, alpha=0.2)
        ax.set_title(f"{algo.upper()} on CartPole (same init per seed)")
        ax.set_xlabel("timesteps")
        ax.set_ylabel("training episode return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
