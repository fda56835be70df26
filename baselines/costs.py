"""What a protocol or a meta-training run costs, stated before it runs.

The budget is counted from the protocol (tasks x seeds x steps, frames for Atari); the time is an
estimate from a per-step cost *measured* here and now: a short probe run of the same agent (and, for
meta-training, of the same meta-learner) on one task, timed and scaled to the full budget. It is a
wall-clock estimate for this machine with its current torch thread count; the probe's own set-up
(env creation, ROM loads) is included, so short budgets are estimated on the high side.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
from typing import Any

import torch

from metaenvs.errors import MetaEnvsError

PROBE_STEPS = {"inner_steps": 32, "timesteps": 2000}
"""Steps of the probe run, per budget unit."""


def protocol_budget(dist: Any, protocol: Any = None) -> dict[str, Any]:
    """The protocol's whole evaluation budget: tasks, seeds, runs, steps (and frames for RL)."""
    protocol = dist.protocol if protocol is None else protocol
    tasks = len(dist.tasks(protocol.split))
    runs = tasks * len(protocol.seeds)
    budget = {
        "split": protocol.split,
        "tasks": tasks,
        "seeds": len(protocol.seeds),
        "runs": runs,
        "steps_per_run": protocol.budget,
        "unit": protocol.budget_unit,
        "total_steps": runs * protocol.budget,
    }
    if dist.kind == "rl":
        budget["frames"] = budget["total_steps"] * int(getattr(dist, "frames_per_step", 1))
    return budget


def measured_step_seconds(agent: Any, dist: Any, learner: Any = None, steps: int | None = None) -> float:
    """Seconds per step (the protocol's unit) of a short probe on the first held-out task.

    Args:
        agent: The agent (a copy is trained; ``agent`` is left as it was).
        dist: Its distribution.
        learner: A meta-learner to probe ``meta_train`` with (one meta step of one task); ``None``
            probes plain ``agent.learn``.
        steps: Probe length; default :data:`PROBE_STEPS` of the protocol's unit.
    """
    from baselines.driver import meta_train

    protocol = dist.protocol
    steps = steps or min(protocol.budget, PROBE_STEPS[protocol.budget_unit])
    threads = torch.get_num_threads()
    times = []
    for _ in range(2):  # the first run warms caches (data, kernels); the faster of the two counts
        probe = copy.deepcopy(agent)
        t0 = time.perf_counter()
        if learner is None:
            probe.learn(dist.tasks(protocol.split)[0], steps, seed=0)
        else:
            with tempfile.TemporaryDirectory(prefix="metaenvs-probe-") as scratch:
                meta_train(
                    probe,
                    dist,
                    copy.deepcopy(learner),
                    meta_steps=1,
                    meta_batch_size=1,
                    inner_steps=steps,
                    out_dir=scratch,
                    progress=False,
                )
        times.append(time.perf_counter() - t0)
    torch.set_num_threads(threads)
    return min(times) / steps


def format_seconds(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _estimate(seconds: float) -> str:
    return f"about {format_seconds(seconds)} on this machine ({torch.get_num_threads()} torch threads)"


def measured_run_seconds(agent: Any, dist: Any, protocol: Any = None) -> float:
    """Seconds of one evaluation run (reset, learn the protocol's budget, score), measured on the first
    held-out task: the whole budget where it is short (<= 1,000 steps), else a probe scaled to it."""
    protocol = dist.protocol if protocol is None else protocol
    task = dist.tasks(protocol.split)[0]
    steps = protocol.budget if protocol.budget <= 1000 else PROBE_STEPS[protocol.budget_unit]
    times = []
    for _ in range(2):  # the first run warms caches (data, kernels); the faster of the two counts
        probe = copy.deepcopy(agent)
        t0 = time.perf_counter()
        probe.reset(0)
        curve = probe.learn(task, steps, seed=0)
        t1 = time.perf_counter()
        with contextlib.suppress(MetaEnvsError):  # a probe too short to score: time the learning only
            probe.evaluate(task, seed=0, curve=curve)
        times.append((t1 - t0) * protocol.budget / steps + (time.perf_counter() - t1))
    return min(times)


def evaluation_cost(agent: Any, dist: Any, protocol: Any = None) -> dict[str, Any]:
    """The protocol's budget and its estimated wall time here (see the module docstring)."""
    budget = protocol_budget(dist, protocol)
    per_run = measured_run_seconds(agent, dist, protocol)
    seconds = per_run * budget["runs"]
    return {
        **budget,
        "measured_seconds_per_run": per_run,
        "estimated_seconds": seconds,
        "estimate": _estimate(seconds),
    }


def meta_training_cost(
    agent: Any, dist: Any, learner: Any, meta_steps: int, meta_batch_size: int, inner_steps: int
) -> dict[str, Any]:
    """The meta-training budget and its estimated wall time, from a one-task probe of ``learner``."""
    total = meta_steps * meta_batch_size * inner_steps
    per_step = measured_step_seconds(
        agent, dist, learner, steps=min(inner_steps, PROBE_STEPS[dist.protocol.budget_unit])
    )
    seconds = per_step * total
    cost = {
        "meta_steps": meta_steps,
        "meta_batch_size": meta_batch_size,
        "inner_steps": inner_steps,
        "unit": dist.protocol.budget_unit,
        "total_steps": total,
        "measured_seconds_per_step": per_step,
        "estimated_seconds": seconds,
        "estimate": _estimate(seconds),
    }
    if dist.kind == "rl":
        cost["frames"] = total * int(getattr(dist, "frames_per_step", 1))
    return cost
