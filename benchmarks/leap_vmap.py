"""Batched Leap (``agent.learn_batch`` with the Leap hook) against a hand-written ``vmap`` loop.

Usage:
    python benchmarks/leap_vmap.py --size 128 --steps 20 --repeats 7 --out benchmarks/results/leap_vmap

Both train one meta-batch of ``--size`` sinusoid tasks (MLP 2x40, the protocol's SGD) for ``--steps``
inner steps, stacked, and accumulate Leap's meta-gradient. The hand-written arm is the least a vmap
loop can do: ``vmap(grad_and_value)``, the SGD update, and Leap's per-step work (flatten the stacked
parameters and gradients, and add ``scale * ((theta_i - theta_{i+1}) - dL * g_i)`` with Leap's
default options: stabilised ``dL = -|dL|``, d1 scale ``1 / sqrt(dL^2 + |theta_i - theta_{i+1}|^2)``);
it is checked to give the same meta-gradient. Reported: the median and spread of the per-pair ratio
library / hand, the pairs interleaved with alternating order. Writes ``result.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, grad_and_value, vmap

import metaenvs
from agents import SupervisedAgent
from baselines import Leap


def library(agent, learner, tasks, steps, seeds):
    def run() -> tuple[float, dict]:
        learner.reset_accumulators()
        t0 = time.perf_counter()
        agent.learn_batch(tasks, steps, hooks=[learner], seeds=seeds)
        return time.perf_counter() - t0, learner.meta_gradient()

    return run


def hand(agent, learner, tasks, steps, seeds):
    """Stacked SGD and Leap's d1 increments written out by hand."""
    batch = agent.task_batch(tasks, steps, seeds, batched=True)
    model, loss_fn = agent.model, torch.nn.functional.mse_loss
    names = list(learner.init)

    def f(params, x, y):
        return loss_fn(functional_call(model, params, (x,)), y)

    g_and_v = vmap(grad_and_value(f))
    size = len(tasks)

    def run() -> tuple[float, dict]:
        t0 = time.perf_counter()
        params = {k: v.detach().expand(size, *v.shape).clone() for k, v in learner.init.items()}
        total = torch.zeros(sum(v[0].numel() for v in params.values()), dtype=torch.float64)
        previous = None
        for step in range(steps):
            x, y = batch.minibatch(step)
            grads, value = g_and_v(params, x, y)
            theta = torch.cat([params[k].reshape(size, -1) for k in names], 1)
            g = torch.cat([grads[k].reshape(size, -1) for k in names], 1)
            if previous is not None:  # Leap's defaults: stabilised dL = -|dL|, d1 (length) scale
                t_prev, g_prev, l_prev = previous
                increment, delta = t_prev - theta, -(value.double() - l_prev).abs()
                scale = 1.0 / torch.sqrt(delta.square() + increment.double().square().sum(1))
                total += (scale.to(increment.dtype) @ increment).double()
                total -= ((scale * delta).to(g_prev.dtype) @ g_prev).double()
            previous = (theta, g, value.double())
            params = {k: params[k] - agent.lr * grads[k] for k in names}
        seconds = time.perf_counter() - t0
        out, offset = {}, 0
        for k in names:
            n = learner.init[k].numel()
            out[k] = (total[offset : offset + n] / size).reshape(learner.init[k].shape)
            offset += n
        return seconds, out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/leap_vmap"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist = metaenvs.make("Synthetic/Sinusoid-v0")
    agent = SupervisedAgent.for_distribution(dist, seed=0, batched=True)
    learner = Leap()
    learner.initialize(agent)
    tasks = dist.sample(np.random.default_rng(0), "train", args.size)
    seeds = list(range(args.size))
    arms = {
        "library": library(agent, learner, tasks, args.steps, seeds),
        "hand": hand(agent, learner, tasks, args.steps, seeds),
    }
    _, mine = arms["library"]()
    _, ref = arms["hand"]()
    agree = max(float((mine[k].double() - ref[k].double()).abs().max()) for k in mine)
    scale = max(float(ref[k].abs().max()) for k in ref)
    times = {"library": [], "hand": []}
    for i in range(args.repeats):
        for name in ("library", "hand") if i % 2 == 0 else ("hand", "library"):
            times[name].append(arms[name]()[0])
    ratios = [a / b for a, b in zip(times["library"], times["hand"], strict=True)]
    result = {
        "command": "python benchmarks/leap_vmap.py "
        f"--size {args.size} --steps {args.steps} --repeats {args.repeats}",
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "torch_threads": 1,
        },
        "size": args.size,
        "steps": args.steps,
        "library_s": statistics.median(times["library"]),
        "hand_s": statistics.median(times["hand"]),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "meta_gradient_max_abs_difference": agree,
        "meta_gradient_max_abs": scale,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
