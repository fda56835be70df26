"""Atari throughput: the native actor-critic and our stacks against SB3's default Atari pipeline.

Usage:
    python benchmarks/atari_throughput.py [--game breakout] [--n-envs 16] [--steps 8000] [--repeats 5]
    python benchmarks/atari_throughput.py --device cuda --n-envs 64 --threads 16   # a GPU box

Measured in one process, interleaved round by round so that machine noise hits every
arm alike, and reported as ratios against the baseline of the same round:

* **raw emulator**: ``ALEInterface.act`` frames per second, one thread, sticky actions;
* **env only** (random actions, frames per second, and as a fraction of the raw speed):
  SB3's ``make_atari_env`` + ``VecFrameStack`` (the baseline), our single-env Gymnasium
  stack in SB3's ``DummyVecEnv``, and our native stack (ale-py ``AtariVectorEnv`` behind
  :class:`agents.vec_env.GymnasiumVecEnv`);
* **raw native emulator**: ale-py's ``AtariVectorEnv`` alone (no wrappers, random actions) with the
  same emulator threads as the learners: the ceiling a learner's frames per second are a fraction of;
* **A2C agent-steps per second**: SB3 ``A2C`` with the same model (Leap's recipe: the Mnih
  et al. 2013 encoder, RMSprop) on SB3's pipeline (the baseline) and on ours, our
  ``ActorCritic.learn`` (hooks, raw-score curves) on ours, and :class:`agents.NativeActorCritic`
  (the Atari-100k tier's agent) on its first call of a game (opening the vector env, ROM loads)
  and on a later call (the env cached), plain, channels-last, and through ``torch.compile``.

Writes ``benchmarks/results/atari_throughput/result.json`` and ``result.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import metaenvs
from agents import make_agent
from agents.actor_critic import resolve_policy_kwargs
from agents.vec_env import GymnasiumVecEnv
from metaenvs.atari.games import gym_id
from metaenvs.io import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "atari_throughput"


def raw_emulator_fps(game: str, frames: int) -> float:
    """Frames per second of the bare emulator (one thread, sticky actions, random minimal actions)."""
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setFloat("repeat_action_probability", 0.25)
    ale.setInt("random_seed", 0)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(frames):
        ale.act(actions[rng.integers(len(actions))])
        if ale.game_over():
            ale.reset_game()
    return frames / (time.perf_counter() - t0)


def raw_native_fps(game: str, n_envs: int, threads: int, steps: int) -> float:
    """Frames per second of ale-py's bare ``AtariVectorEnv`` (Machado's settings, random actions)."""
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(
        game, n_envs, num_threads=threads, repeat_action_probability=0.25, noop_max=0,
        autoreset_mode="SameStep", reward_clipping=False, use_fire_reset=False,
    )  # fmt: skip
    env.reset(seed=np.arange(n_envs))
    actions = np.random.default_rng(0).integers(env.single_action_space.n, size=(steps, n_envs))
    t0 = time.perf_counter()
    for row in actions:
        env.step(row)
    seconds = time.perf_counter() - t0
    env.close()
    return steps * n_envs * 4 / seconds


def native_steps_per_second(dist, task, n_envs: int, steps: int, device: str, **options) -> dict:
    """The native agent's agent-steps per second on its first call (env opened) and a second (cached)."""
    try:
        agent = make_agent(dist, seed=0, n_envs=n_envs, device=device, **options)
        t0 = time.perf_counter()
        agent.learn(task, steps, seed=0)
        first = steps / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        agent.learn(task, steps, seed=1)
        cached = steps / (time.perf_counter() - t0)
        agent.close()
        return {"first": first, "cached": cached}
    except Exception as exc:  # an option this machine cannot run (torch.compile without a compiler)
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def sb3_pipeline(game: str, n_envs: int):
    """SB3's default Atari stack under the Machado settings it can express."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env = make_atari_env(
        gym_id(game),
        n_envs=n_envs,
        seed=0,
        env_kwargs={"frameskip": 1, "repeat_action_probability": 0.25, "full_action_space": False},
        wrapper_kwargs={"noop_max": 0, "terminal_on_life_loss": False},
    )
    return VecFrameStack(env, 4)


def our_pipeline(task, n_envs: int, native: bool):
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = GymnasiumVecEnv(task.make_vector_env(n_envs)) if native else DummyVecEnv([task.make_env] * n_envs)
    env.seed(0)
    return env


def env_fps(make, steps: int) -> float:
    """Frames per second of random-action stepping (4 frames per step)."""
    env = make()
    env.reset()
    rng = np.random.default_rng(0)
    n = env.action_space.n
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(n, size=env.num_envs))
    seconds = time.perf_counter() - t0
    env.close()
    return steps * env.num_envs * 4 / seconds


def a2c_steps_per_second(make_env, recipe: dict, steps: int) -> float:
    """Agent-steps per second of SB3 A2C with the protocol's model and optimizer settings."""
    from stable_baselines3 import A2C

    env = make_env()
    algo = A2C(
        recipe["policy"],
        env,
        policy_kwargs=resolve_policy_kwargs(recipe["policy_kwargs"]),
        seed=0,
        **recipe["algo_kwargs"],
    )
    t0 = time.perf_counter()
    algo.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    env.close()
    return steps / seconds


def agent_steps_per_second(dist, task, n_envs: int, steps: int) -> float:
    agent = make_agent(dist, seed=0, n_envs=n_envs)
    t0 = time.perf_counter()
    agent.learn(task, steps, seed=0)
    return steps / (time.perf_counter() - t0)


def one_round(args, dist, task, recipe, native_dist) -> dict:
    """Every arm once, baseline first."""
    sb3 = lambda: sb3_pipeline(args.game, args.n_envs)  # noqa: E731
    native = lambda: our_pipeline(task, args.n_envs, native=True)  # noqa: E731
    dummy = lambda: our_pipeline(task, args.n_envs, native=False)  # noqa: E731
    return {
        "raw_emulator_fps": raw_emulator_fps(args.game, args.env_steps * 4),
        "env_fps_sb3": env_fps(sb3, args.env_steps),
        "env_fps_ours_dummy": env_fps(dummy, args.env_steps),
        "env_fps_ours_native": env_fps(native, args.env_steps),
        "a2c_sps_sb3": a2c_steps_per_second(sb3, recipe, args.steps),
        "a2c_sps_ours_native": a2c_steps_per_second(native, recipe, args.steps),
        "agent_sps_ours": agent_steps_per_second(dist, task, args.n_envs, args.steps),
        "raw_native_fps": raw_native_fps(args.game, args.n_envs, args.threads, args.env_steps),
        **native_arms(args, native_dist),
    }


def native_arms(args, native_dist) -> dict:
    """The native agent, plain and with each option (``native_<option>_{first,cached}`` steps/s)."""
    task = next(t for s in ("test", "train") for t in native_dist.tasks(s) if t.params["game"] == args.game)
    out = {}
    options = {"plain": {}, "channels_last": {"channels_last": True}}
    if args.compile:
        options["compile"] = {"compile": True}
    for name, kwargs in options.items():
        for key, value in native_steps_per_second(
            native_dist, task, args.n_envs, args.steps, args.device, **kwargs
        ).items():
            out[f"native_{name}_{key}"] = value
    return out


def summarise(rounds: list[dict]) -> dict:
    """Medians, and per-round ratios against the round's baseline (median over rounds)."""

    def median_ratio(key: str, base: str) -> float:
        return statistics.median(r[key] / r[base] for r in rounds)

    numeric = [k for k in rounds[0] if all(isinstance(r.get(k), float) for r in rounds)]
    native = {}
    for name in ("plain", "channels_last", "compile"):
        key = f"native_{name}_cached"
        if key not in numeric:
            continue
        native[f"native_{name}_vs_sb3_a2c"] = median_ratio(key, "a2c_sps_sb3")
        native[f"native_{name}_frames_fraction_of_raw_native"] = statistics.median(
            4 * r[key] / r["raw_native_fps"] for r in rounds
        )
        native[f"native_{name}_first_call_vs_cached"] = median_ratio(f"native_{name}_first", key)
    ranges = {k: [min(r[k] for r in rounds), max(r[k] for r in rounds)] for k in numeric}
    return {
        "medians": {k: statistics.median(r[k] for r in rounds) for k in numeric},
        "ranges": ranges,
        "errors": sorted({r[k] for r in rounds for k in r if k.endswith("_error")}),
        "native_ratios": native,
        "ratios": {
            "a2c_ours_native_vs_sb3": median_ratio("a2c_sps_ours_native", "a2c_sps_sb3"),
            "agent_ours_vs_sb3_a2c": median_ratio("agent_sps_ours", "a2c_sps_sb3"),
            "env_ours_native_vs_sb3": median_ratio("env_fps_ours_native", "env_fps_sb3"),
            "env_ours_dummy_vs_sb3": median_ratio("env_fps_ours_dummy", "env_fps_sb3"),
            "env_sb3_fraction_of_raw": median_ratio("env_fps_sb3", "raw_emulator_fps"),
            "env_ours_dummy_fraction_of_raw": median_ratio("env_fps_ours_dummy", "raw_emulator_fps"),
            "env_ours_native_fraction_of_raw": median_ratio("env_fps_ours_native", "raw_emulator_fps"),
        },
    }


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = summary["medians"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = ["raw emulator\n(1 thread)", "SB3 default", "ours, DummyVecEnv", "ours, native"]
    keys = ["raw_emulator_fps", "env_fps_sb3", "env_fps_ours_dummy", "env_fps_ours_native"]
    left.bar(names, [med[k] for k in keys], color=["grey", "tab:blue", "tab:orange", "tab:green"])
    left.set_ylabel("frames / s (random actions)")
    left.set_title("env only")
    names = ["SB3 A2C on\nSB3 pipeline", "SB3 A2C on\nour native stack", "our ActorCritic\n(SB3, hooks)"]
    keys = ["a2c_sps_sb3", "a2c_sps_ours_native", "agent_sps_ours"]
    names += [f"NativeActorCritic\n{n.replace('_', ' ')}" for n in ("plain", "channels_last", "compile")]
    keys += [f"native_{n}_cached" for n in ("plain", "channels_last", "compile")]
    shown = [(n, k) for n, k in zip(names, keys, strict=True) if k in med]
    right.bar([n for n, _ in shown], [med[k] for _, k in shown], color="tab:green")
    right.axhline(0.4 * med["raw_native_fps"] / 4, color="k", ls="--", lw=1, label="40% of raw native")
    right.legend(fontsize=7)
    right.set_ylabel("agent steps / s")
    right.set_title("A2C, Leap's Atari recipe")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8000, help="A2C agent steps per arm and round")
    parser.add_argument("--env-steps", type=int, default=500, help="vector-env steps per env-only arm")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(), help="torch threads, every arm")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="emulator threads of the raw arm")
    parser.add_argument("--device", default="cpu", help="the native agent's device")
    parser.add_argument("--compile", action="store_true", help="also measure the native agent compiled")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)  # a benchmark setting, equal for every arm
    dist = metaenvs.make("Atari/LeapPool-v0")
    task = next(t for s in ("test", "train") for t in dist.tasks(s) if t.params["game"] == args.game)
    recipe = dist.protocol.agent
    native_dist = metaenvs.make("Atari/LeapPool-100k-v0")
    rounds = [one_round(args, dist, task, recipe, native_dist) for _ in range(args.repeats)]
    summary = summarise(rounds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": "python benchmarks/atari_throughput.py " + " ".join(sys.argv[1:]),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "rounds": rounds,
        **summary,
    }
    write_json_atomic(out / "result.json", result)
    plot(summary, out / "result.png")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
