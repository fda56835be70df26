"""The meta-training driver: meta-batches, meta-updates, logs, checkpoints and resume."""

from __future__ import annotations

import copy
import csv
import functools
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.hooks import Hook
from baselines.base import MetaLearner
from baselines.checkpoint import load_checkpoint, save_checkpoint
from baselines.executors import run_local
from baselines.lockstep import Lockstep, run_cooperatively
from metaenvs.core import TaskDistribution
from metaenvs.errors import CheckpointError, IncompatibleAgentError
from metaenvs.io import save_initialization, writable_folder, write_bytes_atomic
from metaenvs.seeding import derive_seed
from metaenvs.validation import one_of, positive_int

EXECUTORS = ("local", "ray")
PATHS = ("local", "batched", "lockstep", "ray", "ray-lockstep")
"""How a meta-batch runs (:func:`execution_path`): task after task in this process; all tasks at once
on a batched agent; one replica per task advanced one inner step at a time (CTS); Ray tasks; Ray
actors in lockstep. Callback and trajectory learners (``MetaLearner.kind``) take every path but
lockstep, which only callback learners that declare ``lockstep`` take."""


def execution_path(agent: Any, learner: MetaLearner, executor: str = "local") -> str:
    """The one path a run's meta-batches take, chosen once before anything runs (see :data:`PATHS`).

    Raises:
        IncompatibleAgentError: For a combination that has no path (a lockstep learner that is not a
            callback learner).
    """
    one_of("executor", executor, EXECUTORS)
    if learner.lockstep and learner.kind != "callback":
        raise IncompatibleAgentError(
            f"{type(learner).__name__} declares lockstep but runs its own inner loop (kind "
            f"{learner.kind!r}); lockstep learners must be callback learners."
        )
    if executor == "ray":
        return "ray-lockstep" if learner.lockstep else "ray"
    if agent.capabilities.batched and learner.supports_batched():
        return "batched"
    return "lockstep" if learner.lockstep else "local"


LOG_FIELDS = (
    "meta_step",
    "tasks",
    "first_value",
    "final_value",
    "meta_lr",
    "meta_grad_norm",
    "frames",
    "seconds",
)


@dataclass
class MetaTrainResult:
    """What :func:`meta_train` returns.

    Attributes:
        init: The meta-learned initialization (parameter name → tensor).
        history: One row per meta step (the CSV log).
        init_path: Where the initialization was saved, if ``out_dir`` was given.
        resumed_from: Meta step the run resumed from (0 for a fresh run).
    """

    init: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    init_path: Path | None = None
    resumed_from: int = 0


def meta_batch(dist: TaskDistribution, seed: int, step: int, size: int, split: str = "train") -> list:
    """The tasks of meta step ``step``: a pure function of ``(seed, step)``, so resumes see the same."""
    return dist.sample(np.random.default_rng(derive_seed(seed, "meta-batch", step)), split, size)


def task_seed(seed: int, step: int, index: int) -> int:
    """Agent seed of task ``index`` of meta step ``step``."""
    return derive_seed(seed, "task", step, index)


def meta_train(
    agent: Any,
    dist: TaskDistribution,
    meta_learner: MetaLearner,
    *,
    meta_steps: int,
    meta_batch_size: int,
    inner_steps: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    progress: bool = True,
    executor: str = "local",
    max_steps_this_call: int | None = None,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    max_retries: int = 3,
) -> MetaTrainResult:
    """Meta-train ``meta_learner``'s initialization on the ``train`` split of ``dist``.

    Args:
        agent: A ``SupervisedAgent`` or ``ActorCritic`` built for ``dist``; its current
            parameters are the starting initialization.
        dist: The task distribution.
        meta_learner: The algorithm (a :class:`~baselines.base.MetaLearner`).
        meta_steps: Number of meta-updates.
        meta_batch_size: Tasks per meta-update.
        inner_steps: Budget of each task (agent's unit); default: the protocol's budget.
        seed: Decides every meta-batch and every task seed.
        out_dir: Folder for ``log.csv``, checkpoints and ``init.safetensors`` + card. A run
            pointed at a folder with a checkpoint resumes from it.
        checkpoint_every: Meta steps between checkpoints.
        progress: Show a progress bar.
        executor: ``"local"`` (tasks run one after another in this process, or all at once on a
            batched agent) or ``"ray"`` (tasks as Ray tasks, CTS as Ray actors in lockstep; see
            :mod:`baselines.ray_executor`). Both give bitwise the same initialization on CPU.
        max_steps_this_call: Stop after this many meta steps (then resume later); for tests.
        ray_address: Address of an existing Ray cluster (``"auto"``, ``"HOST:6379"``); ``None``
            starts a local Ray instance (or uses the one already initialised).
        ray_num_cpus: CPUs of a local Ray instance started here (``None``: all).
        max_retries: Retries of a Ray task (or replays of a CTS actor) whose worker died.

    Returns:
        The :class:`MetaTrainResult`.
    """
    meta_steps = positive_int("meta_steps", meta_steps)
    meta_batch_size = positive_int("meta_batch_size", meta_batch_size)
    inner_steps = positive_int("inner_steps", dist.protocol.budget if inner_steps is None else inner_steps)
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every)
    path = execution_path(agent, meta_learner, executor)
    config = {
        "algorithm": meta_learner.name,
        "dist_id": dist.id,
        "dist_seed": dist.seed,
        "seed": seed,
        "meta_steps": meta_steps,
        "meta_batch_size": meta_batch_size,
        "inner_steps": inner_steps,
        "hyperparameters": meta_learner.hyperparameters(),
        "agent": agent.hyperparameters(),
    }
    meta_learner.initialize(agent, total_meta_steps=meta_steps)
    if hasattr(meta_learner, "check_memory"):
        at_once = meta_batch_size if path == "batched" else 1
        meta_learner.check_memory(agent, inner_steps, at_once)
    if out_dir is not None:
        writable_folder(out_dir)
    history, start = _resume(out_dir, meta_learner, config)
    stop = meta_steps if max_steps_this_call is None else min(meta_steps, start + max_steps_this_call)
    bar = tqdm(
        total=meta_steps,
        initial=start,
        disable=not progress,
        desc=f"{meta_learner.name} {dist.id}",
        unit="meta-step",
    )
    replicas: list[Any] = []
    remote = None
    if path.startswith("ray") and start < stop:
        from baselines.ray_executor import RayExecutor

        remote = RayExecutor(agent, ray_address, ray_num_cpus, max_retries)
    frames_per_meta_step = meta_batch_size * inner_steps * getattr(dist, "frames_per_step", 1)
    unit = "inner steps" if dist.kind == "supervised" else "gradient steps"
    observers = [InnerProgress(bar, meta_batch_size, inner_steps, unit)] if progress else []
    for step in range(start, stop):
        t0 = time.perf_counter()
        tasks = meta_batch(dist, seed, step, meta_batch_size)
        for observer in observers:
            observer.begin(step)
        meta_learner.begin_meta_batch(len(tasks))
        seeds = [task_seed(seed, step, i) for i in range(len(tasks))]
        if path == "ray":
            curves = remote.run_tasks(tasks, inner_steps, meta_learner, seeds)
        elif path == "ray-lockstep":
            curves = remote.run_lockstep(tasks, inner_steps, meta_learner, seeds)
        elif path == "batched":
            curves = _learn_batched(agent, tasks, inner_steps, meta_learner, seeds)
        elif path == "lockstep":
            replicas = replicas or [copy.deepcopy(agent) for _ in tasks]
            curves = _learn_in_lockstep(replicas, tasks, inner_steps, meta_learner, seed, step, observers)
        else:
            curves = run_local(agent, tasks, inner_steps, meta_learner, seeds, observers)
        firsts = [c.values[0] for c in curves]
        finals = [c.values[-1] for c in curves]
        stats = meta_learner.meta_update()
        history.append(
            {
                "meta_step": step + 1,
                "tasks": meta_batch_size,
                "first_value": _finite_mean(firsts),
                "final_value": _finite_mean(finals),
                **stats,
                "frames": frames_per_meta_step if dist.kind == "rl" else None,
                "seconds": time.perf_counter() - t0,
            }
        )
        bar.update(1)
        bar.set_postfix(_progress_fields(history, dist.kind), refresh=False)
        if out_dir is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == stop):
            _checkpoint(out_dir, step + 1, meta_learner, config, history)
    bar.close()
    result = MetaTrainResult(meta_learner.initialization(), history, None, start)
    if out_dir is not None and stop == meta_steps:
        result.init_path = Path(out_dir) / "init.safetensors"
        card = {
            "algorithm": meta_learner.name,
            "dist_id": dist.id,
            "protocol_id": dist.protocol.id,
            "protocol_hash": dist.protocol.hash,
            "split_hash": dist.split_hash(),
            **config,
        }
        save_initialization(result.init_path, result.init, card)
    return result


def _learn_batched(
    agent: Any, tasks: list, inner_steps: int, meta_learner: MetaLearner, seeds: list[int]
) -> list[Any]:
    """The whole meta-batch at once on a batched agent (``vmap``)."""
    if meta_learner.kind == "trajectory":
        return meta_learner.learn_batch(agent, tasks, inner_steps, seeds)
    fresh = meta_learner.starts_tasks_fresh
    return agent.learn_batch(tasks, inner_steps, hooks=[meta_learner], seeds=seeds, fresh_starts=fresh)


def _learn_in_lockstep(
    replicas: list[Any],
    tasks: list,
    inner_steps: int,
    meta_learner: MetaLearner,
    seed: int,
    step: int,
    observers: list[Any],
) -> list[Any]:
    """Run the meta-batch with one agent replica per task, one inner step of each task in turn."""
    if meta_learner.starts_tasks_fresh:
        for i, replica in enumerate(replicas[: len(tasks)]):
            replica.reset(task_seed(seed, step, i))
    if all(replica.capabilities.stepwise for replica in replicas):
        return run_cooperatively(
            [
                replica.learn_steps(
                    task, inner_steps, hooks=[meta_learner, *observers], seed=task_seed(seed, step, i)
                )
                for i, (replica, task) in enumerate(zip(replicas, tasks, strict=True))
            ]
        )
    runner = Lockstep(len(tasks))
    jobs = [
        functools.partial(
            replica.learn,
            task,
            inner_steps,
            hooks=[meta_learner, runner, *observers],
            seed=task_seed(seed, step, i),
        )
        for i, (replica, task) in enumerate(zip(replicas, tasks, strict=True))
    ]
    return runner.run(jobs)


def _resume(
    out_dir: str | Path | None, meta_learner: MetaLearner, config: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    if out_dir is None:
        return [], 0
    found = load_checkpoint(out_dir)
    if found is None:
        return [], 0
    tensors, state = found
    if state["config"] != _jsonable(config):
        changed = sorted(k for k in config if state["config"].get(k) != _jsonable(config)[k])
        raise CheckpointError(
            f"{out_dir} holds a run with a different configuration (differs in: {', '.join(changed)}). "
            "Use another --out folder, or delete this one to start over."
        )
    meta_learner.load_state(tensors, state["meta_learner"])
    return list(state["history"]), int(state["step"])


def _checkpoint(
    out_dir: str | Path,
    step: int,
    meta_learner: MetaLearner,
    config: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    save_checkpoint(
        out_dir,
        step,
        meta_learner.state_tensors(),
        {"config": _jsonable(config), "meta_learner": meta_learner.state_json(), "history": history},
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(history)
    write_bytes_atomic(Path(out_dir) / "log.csv", buffer.getvalue().encode())


def _jsonable(data: Any) -> Any:
    import json

    return json.loads(json.dumps(data))


class InnerProgress(Hook):
    """Shows progress inside a meta step on the bar: inner steps done across the meta-batch's tasks.

    It only watches (an observer after the meta-learner; it changes nothing); the bar's text is
    refreshed at most every half second. Learners that run their own functional loop (MAML, ...)
    fire no inner-step events and are counted a whole task at a time.
    """

    def __init__(self, bar: Any, tasks: int, steps_per_task: int, unit: str) -> None:
        self.bar, self.base = bar, bar.desc
        self.total, self.per_task, self.unit = tasks * steps_per_task, steps_per_task, unit
        self.done, self._events, self._shown = 0, 0, 0.0

    def begin(self, step: int) -> None:
        self.done = 0

    def on_task_start(self, ctx: Any) -> None:
        self._events = 0

    def on_inner_step(self, ctx: Any) -> None:
        self._events += 1
        self.done += 1
        self._show()

    def task_done(self) -> None:
        if self._events == 0:  # a functional learner: no events, count the task's steps at once
            self.done += self.per_task
        self._events = 0
        self._show(force=True)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown > 0.5:
            self._shown = now
            of = f"/{self.total:,}" if self.unit == "inner steps" else ""
            self.bar.set_description_str(f"{self.base} [{self.unit} {self.done:,}{of}]")


def _progress_fields(history: list[dict[str, Any]], kind: str) -> dict[str, str]:
    """Progress-bar fields: final value and meta lr; for RL also total frames and frames per second."""
    last = history[-1]
    final = last["final_value"]
    fields = {"final": "n/a" if final is None else f"{final:.4g}", "meta_lr": f"{last['meta_lr']:.3g}"}
    if kind == "rl":
        fields["frames"] = f"{sum(row.get('frames') or 0 for row in history):,}"
        fields["fps"] = f"{(last['frames'] or 0) / max(last['seconds'], 1e-9):,.0f}"
    return fields


def _finite_mean(values: list[float]) -> float | None:
    """Mean of the finite values (RL curves may have no finished episode), or ``None``."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None
