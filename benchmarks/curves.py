"""Meta-training with a held-out curve: train in chunks, score the initialization after each one.

Shared by the benchmarks whose result must show whether a run converged (Leap's Omniglot and
Multi-CV). A chunk is a resumed call of :func:`baselines.meta_train` on the run's folder, so the
chunked run gives bitwise the initialization of one uninterrupted run, and an interrupted one
resumes from its last chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def train_with_curve(
    make_agent: Callable[[], Any],
    dist: Any,
    make_learner: Callable[[], Any],
    score: Callable[[Any], float],
    *,
    run_dir: Path,
    meta_steps: int,
    every: int,
    meta_batch_size: int,
    seed: int,
    inner_steps: int | None = None,
    initial: Any = None,
) -> tuple[Any, list[list[float]]]:
    """Meta-train for ``meta_steps`` and score the initialization every ``every`` steps.

    Each chunk builds its agent and meta-learner afresh, as a run resumed in a new process does: an
    agent or learner carried over from the previous chunk holds its state (the agent's parameters
    adapted to the last task, the learner's initialized selection), and the chunked run would no
    longer be the uninterrupted one.

    Args:
        make_agent: Builds the agent whose parameters start the run (the same one every call).
        dist: The task distribution.
        make_learner: Builds the meta-learner.
        score: Maps an initialization to its held-out score (it must not train on the test split's
            answers; use a val split where the distribution has one). Score with an agent of its
            own: scoring adapts the agent it runs on.
        run_dir: The run's folder (``train/`` holds the checkpoints, ``curve.json`` the curve).
        meta_steps: Meta steps of the whole run.
        every: Meta steps between two points of the curve.
        meta_batch_size: Tasks per meta step.
        seed: The meta-training seed.
        inner_steps: Inner steps per task (default: the protocol's budget).
        initial: The starting initialization, scored at meta step 0 (default: the agent's model's).

    Returns:
        The final initialization and the curve, rows of ``[meta step, score, seconds of training so
        far]`` (scoring time excluded).
    """
    from agents.parameters import snapshot
    from baselines import meta_train
    from metaenvs.io import write_json_atomic

    curve_path = run_dir / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.is_file() else []
    if not curve:  # meta step 0: the seed's random initialization
        start = snapshot(make_agent().model) if initial is None else initial
        curve.append([0, float(score(start)), 0.0])
        write_json_atomic(curve_path, curve)
    while True:
        t0 = time.perf_counter()
        result = meta_train(
            make_agent(),
            dist,
            make_learner(),
            meta_steps=meta_steps,
            meta_batch_size=meta_batch_size,
            inner_steps=inner_steps,
            seed=seed,
            out_dir=run_dir / "train",
            checkpoint_every=every,
            progress=False,
            max_steps_this_call=every,
        )
        done = len(result.history)  # the run's meta steps so far (a resumed run included)
        seconds = curve[-1][2] + time.perf_counter() - t0
        if done > curve[-1][0]:
            curve.append([done, float(score(result.init)), seconds])
            write_json_atomic(curve_path, curve)
        if done >= meta_steps:
            return result.init, curve


def run_with_curve(
    algo: str,
    dist: Any,
    seed: int,
    *,
    settings: dict[str, Any],
    model_spec: dict[str, Any],
    meta_steps: int,
    meta_batch_size: int,
    every: int,
    protocol: Any,
    curve_protocol: Any,
    run_dir: Path,
    inner_steps: int | None = None,
) -> dict[str, Any]:
    """One run of a vision benchmark: meta-train ``algo`` (or nothing, for ``"scratch"``) with a
    held-out curve under ``curve_protocol``, then score the initialization under ``protocol``.

    Returns:
        The run's record: final error, AUC of the inner-loop curve, the mean inner-loop curve, the
        meta-training curve, the seconds spent training and the protocol's hash.
    """
    import numpy as np

    from agents import make_agent
    from agents.parameters import snapshot
    from baselines import make_meta_learner
    from metaenvs.evaluation import evaluate

    def build() -> Any:
        return make_agent(dist, seed=seed, model_spec=model_spec)

    agent, scorer = build(), build()  # the scorer is never a training agent (see train_with_curve)

    def score(init: Any) -> float:
        return float(np.mean(evaluate(scorer, dist, init, curve_protocol, custom=True).scores("final")))

    t0 = time.perf_counter()
    if algo == "scratch":
        init, curve = snapshot(agent.model), []
    else:
        init, curve = train_with_curve(
            build,
            dist,
            lambda: make_meta_learner(algo, **settings),
            score,
            run_dir=run_dir,
            meta_steps=meta_steps,
            every=every,
            meta_batch_size=meta_batch_size,
            seed=seed,
            inner_steps=inner_steps,
        )
    train_s = curve[-1][2] if curve else time.perf_counter() - t0
    result = evaluate(agent, dist, init, protocol, custom=True)  # custom: fewer seeds or filters
    inner = np.array([r["curve"]["values"] for r in result.records])
    return {
        "algo": algo,
        "seed": seed,
        "final_error": float(np.mean(result.scores("final"))),
        "auc": float(np.mean(result.scores("auc"))),
        "mean_curve": inner.mean(axis=0).tolist(),
        "meta_curve": curve,
        "train_seconds": train_s,
        "protocol_hash": protocol.hash,
    }


def mean_curve(curves: list[list[list[float]]]) -> tuple[list[float], list[float]]:
    """The meta steps and the mean score over runs of ``train_with_curve`` curves (same steps each)."""
    steps = [p[0] for p in curves[0]]
    return steps, [sum(c[i][1] for c in curves) / len(curves) for i in range(len(steps))]
