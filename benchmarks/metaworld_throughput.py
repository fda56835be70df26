"""Meta-World throughput: the task's vector envs against a plain loop, our PPO agent against SB3's PPO.

Usage:
    python benchmarks/metaworld_throughput.py [--dist MetaWorld/ML1-reach-v3] [--n-envs 4] [--repeats 5]

Measured in one process, interleaved round by round so that machine noise hits every arm alike, and
reported as ratios against the baseline measured in the same round (median and quartiles over rounds):

* **env steps per second**, random actions from one seeded generator, the same seeds: a plain Python
  loop over ``n_envs`` single envs (``task.make_env()``, the baseline), ``task.make_vector_env(n)``
  (Gymnasium's ``SyncVectorEnv``) and ``task.make_vector_env(n, asynchronous=True)`` (``AsyncVectorEnv``,
  one process per env);
* **PPO agent steps per second** on the same task and recipe (the protocol's): SB3's own ``PPO`` on a
  ``DummyVecEnv`` of the task (the baseline) and our ``ActorCritic.learn`` (the same SB3 PPO with the
  hook at every gradient step, episode and success recording).

Writes ``benchmarks/results/metaworld_throughput/result.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import torch

import metaenvs
from agents import make_agent
from agents.hooks import Hook
from metaenvs.io import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "metaworld_throughput"


def loop_fps(task, n_envs: int, steps: int) -> float:
    """Env steps per second of a Python loop over ``n_envs`` single envs."""
    envs = [task.make_env() for _ in range(n_envs)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        actions = rng.uniform(-1, 1, (n_envs, 4)).astype(np.float32)
        for env, action in zip(envs, actions, strict=True):
            *_, truncated, _ = env.step(action)
            if truncated:
                env.reset()
    seconds = time.perf_counter() - t0
    for env in envs:
        env.close()
    return (steps // n_envs) * n_envs / seconds


def vector_fps(task, n_envs: int, steps: int, asynchronous: bool) -> float:
    """Env steps per second of the task's Gymnasium vector env (it resets finished envs itself)."""
    envs = task.make_vector_env(n_envs, asynchronous=asynchronous)
    envs.reset(seed=list(range(n_envs)))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        envs.step(rng.uniform(-1, 1, (n_envs, 4)).astype(np.float32))
    seconds = time.perf_counter() - t0
    envs.close()
    return (steps // n_envs) * n_envs / seconds


def sb3_ppo_sps(dist, task, steps: int) -> float:
    """SB3's PPO, the protocol's recipe, on a DummyVecEnv of the task: agent steps per second."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    recipe = dist.protocol.agent
    vec = DummyVecEnv([task.make_env] * recipe["n_envs"])
    vec.seed(0)
    algo = PPO("MlpPolicy", vec, policy_kwargs=recipe["policy_kwargs"], seed=0, **recipe["algo_kwargs"])
    t0 = time.perf_counter()
    algo.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    vec.close()
    return steps / seconds


class Counter(Hook):
    def __init__(self) -> None:
        self.steps = 0

    def on_inner_step(self, ctx) -> None:
        self.steps += 1


def agent_sps(dist, task, steps: int) -> tuple[float, int]:
    """Our ActorCritic (the protocol's agent) with a hook: agent steps per second and gradient steps."""
    agent = make_agent(dist, seed=0)
    counter = Counter()
    t0 = time.perf_counter()
    agent.learn(task, steps, hooks=[counter], seed=0)
    return steps / (time.perf_counter() - t0), counter.steps


def quartiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": q[0],
        "q3": q[2],
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", default="MetaWorld/ML1-reach-v3")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--env-steps", type=int, default=8000)
    parser.add_argument("--agent-steps", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist = metaenvs.make(args.dist)
    task = dist.tasks("test")[0]
    rounds = []
    for _ in range(args.repeats):
        row = {
            "loop": loop_fps(task, args.n_envs, args.env_steps),
            "sync": vector_fps(task, args.n_envs, args.env_steps, asynchronous=False),
            "async": vector_fps(task, args.n_envs, args.env_steps, asynchronous=True),
            "sb3_ppo": sb3_ppo_sps(dist, task, args.agent_steps),
        }
        row["agent"], row["gradient_steps"] = agent_sps(dist, task, args.agent_steps)
        rounds.append(row)
        print({k: round(v, 1) for k, v in row.items()}, flush=True)
    ratios = {
        "sync_over_loop": quartiles([r["sync"] / r["loop"] for r in rounds]),
        "async_over_loop": quartiles([r["async"] / r["loop"] for r in rounds]),
        "agent_over_sb3_ppo": quartiles([r["agent"] / r["sb3_ppo"] for r in rounds]),
    }
    record = {
        "command": "python benchmarks/metaworld_throughput.py " + " ".join(sys.argv[1:]),
        "dist": dist.id,
        "task": task.id,
        "metaworld": dist.protocol.env["metaworld"],
        "n_envs": args.n_envs,
        "env_steps": args.env_steps,
        "agent_steps": args.agent_steps,
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1_5_15min": list(os.getloadavg()),  # other work on the machine during the run
        },
        "torch_threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps_per_second": {
            k: quartiles([r[k] for r in rounds]) for k in ("loop", "sync", "async", "sb3_ppo", "agent")
        },
        "ratios": ratios,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "result.json", record)
    print({k: round(v["median"], 3) for k, v in ratios.items()})


if __name__ == "__main__":
    main()
