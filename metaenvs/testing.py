"""The public conformance check for task distributions (dm_env-style small contract).

Run it on your own distribution before you register it::

    from metaenvs.testing import check_task_distribution
    check_task_distribution(metaenvs.make("Mine/Thing-v0"))
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from gymnasium.utils.env_checker import check_env

from metaenvs.core import SPLITS, SupervisedData, Task, TaskDistribution
from metaenvs.errors import ConformanceError, IncompatibleAgentError, WrongDistributionError
from metaenvs.metrics import LOSSES, METRICS
from metaenvs.protocol import Protocol
from metaenvs.registration import TaskSpec, make, registry
from metaenvs.spaces import adaptation_for


def _fail(dist: TaskDistribution, message: str) -> None:
    raise ConformanceError(f"{dist.id}: {message}")


def check_task_distribution(dist: TaskDistribution, n_sample: int = 3, rollout_steps: int = 20) -> None:
    """Check that ``dist`` keeps the task-distribution contract.

    Checks: declared kind and splits; a finite held-out split; determinism (the same
    seed gives identical tasks, batches, data and rollouts, element by element);
    different generator seeds give different batches; disjoint splits; JSON round
    trips of spec, tasks and protocol; data shapes and names (supervised) or
    Gymnasium's ``check_env`` (every task's env, including the contextual bandit of
    supervised tasks); for families whose tasks come from another library, the split hash
    recorded with the version the suite was made with (:meth:`TaskDistribution.recorded_split_hash`).

    Raises:
        ConformanceError: Naming the first broken rule.
    """
    _check_declarations(dist)
    recorded = dist.recorded_split_hash()
    if recorded is not None and recorded[0] != dist.split_hash():
        _fail(
            dist,
            f"its split hash {dist.split_hash()[:16]}... differs from the one recorded with {recorded[1]} "
            f"({recorded[0][:16]}...): the installed version gives other tasks; results and board entries "
            "made with the recorded version do not apply to it.",
        )
    twin = make(dist.spec, seed=dist.seed) if dist.id in registry else None
    for split, size in dist.splits.items():
        first = dist.sample(np.random.default_rng(0), split, n_sample)
        again = dist.sample(np.random.default_rng(0), split, n_sample)
        _same_tasks(dist, first, again, f"sample(default_rng(0), {split!r})")
        if twin is not None:
            _same_tasks(dist, first, twin.sample(np.random.default_rng(0), split, n_sample), "a re-made twin")
            if size is not None:
                _same_tasks(dist, dist.tasks(split), twin.tasks(split), f"tasks({split!r}) of a re-made twin")
        _check_seeds_differ(dist, split, size, n_sample)
        for task in first[:2]:
            _check_round_trip(dist, task)
            _check_task_content(dist, task, twin, rollout_steps)
    _check_disjoint(dist, n_sample)
    if twin is not None:
        _check_task_identity(dist, make(dist.spec, seed=dist.seed + 1), rollout_steps)
    if dist.kind == "rl":
        _check_spaces(dist)
    if twin is not None and dist.seed_decides_splits:
        other = make(dist.spec, seed=dist.seed + 1)
        if other.split_hash() == dist.split_hash():
            _fail(dist, "seed_decides_splits is True but seeds 0 and 1 give the same held-out tasks.")


def _check_declarations(dist: TaskDistribution) -> None:
    if dist.kind not in ("rl", "supervised"):
        _fail(dist, f"kind must be 'rl' or 'supervised', got {dist.kind!r}.")
    splits = dist.splits
    if not splits or set(splits) - set(SPLITS):
        _fail(dist, f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}.")
    protocol = dist.protocol
    if not isinstance(protocol, Protocol) or protocol.dist_id != dist.id:
        _fail(dist, f"protocol must be a Protocol of {dist.id}, got {protocol!r}.")
    if splits.get(protocol.split) is None:
        _fail(dist, f"the protocol's split {protocol.split!r} must be finite so results name their tasks.")
    if Protocol.from_dict(json.loads(json.dumps(protocol.to_dict()))).hash != protocol.hash:
        _fail(dist, "the protocol does not round-trip through JSON with the same hash.")
    if TaskSpec.from_json(dist.spec.to_json()) != dist.spec:
        _fail(dist, "the spec does not round-trip through JSON.")


def _same_tasks(dist: TaskDistribution, a: list[Task], b: list[Task], what: str) -> None:
    if [t.to_dict() for t in a] != [t.to_dict() for t in b]:
        _fail(
            dist, f"the same seed gave different tasks ({what}): {[t.id for t in a]} vs {[t.id for t in b]}."
        )


def _check_seeds_differ(dist: TaskDistribution, split: str, size: int | None, n: int) -> None:
    if size == 1:
        return
    batches = {tuple(t.id for t in dist.sample(np.random.default_rng(s), split, n)) for s in range(8)}
    if len(batches) == 1:
        _fail(dist, f"8 different generator seeds all sampled the same {split!r} batch {batches.pop()}.")
    if size is None:
        ids = [t.id for t in dist.sample(np.random.default_rng(0), split, n)]
        if len(set(ids)) != len(ids):
            _fail(dist, f"the infinite split {split!r} repeated a task within one batch: {ids}.")


def _check_disjoint(dist: TaskDistribution, n: int) -> None:
    seen: dict[str, str] = {}
    for split, size in dist.splits.items():
        tasks = dist.tasks(split) if size is not None else dist.sample(np.random.default_rng(0), split, 4 * n)
        for task in tasks:
            key = json.dumps(task.params, sort_keys=True)
            if task.split != split:
                _fail(dist, f"task {task.id!r} from split {split!r} says its split is {task.split!r}.")
            if key in seen and seen[key] != split:
                _fail(dist, f"task params {key[:80]} appear in splits {seen[key]!r} and {split!r}.")
            seen[key] = split


def _check_task_identity(dist: TaskDistribution, other: TaskDistribution, steps: int) -> None:
    """A task's record decides its data: a task of another seed of the distribution is refused, or gives
    exactly the data (or rollouts) it gives there; a record whose params were edited is refused."""
    protocol_split = dist.protocol.split
    candidates = []
    for split, size in other.splits.items():
        if size is None:
            candidates += other.sample(np.random.default_rng(0), split, 1)
            continue
        ids = {t.id for t in dist.tasks(split)}
        shared = [t for t in other.tasks(split) if t.id in ids]  # the same id under both seeds
        candidates += shared[:2] + other.tasks(split)[:1]
    for task in candidates:
        try:
            mine = dist.check_task(task)
        except WrongDistributionError:
            continue
        if dist.kind == "supervised":
            _same_data(dist, task, other.check_task(task).load(), mine.load())
        elif _rollout(mine, steps) != _rollout(other.check_task(task), steps):
            _fail(
                dist,
                f"task {task.id!r} of seed {other.seed} was accepted by seed {dist.seed}; its env differs.",
            )
    task = dist.tasks(protocol_split)[0]
    edited = Task(task.id, task.split, {**task.params, "edited": 1}, task.dist_id)
    try:
        dist.check_task(edited)
    except WrongDistributionError:
        return
    _fail(dist, f"check_task accepted task {task.id!r} with edited params {dict(edited.params)}.")


def _check_spaces(dist: TaskDistribution, per_split: int = 6) -> None:
    """Tasks whose spaces differ must differ only in ways the protocol's agent adapts to (and says so)."""
    tasks = []
    for split, size in dist.splits.items():
        tasks += (
            dist.tasks(split)[:per_split]
            if size is not None
            else dist.sample(np.random.default_rng(0), split, 2)
        )
    spaces = {}
    for task in tasks:
        env = task.make_env()
        spaces[task.id] = (env.observation_space, env.action_space)
        env.close()
    try:
        flags = adaptation_for(spaces)
    except IncompatibleAgentError as exc:
        _fail(dist, f"{exc} Such tasks cannot share one initialization; split the distribution.")
    missing = [flag for flag in flags if not dist.protocol.agent.get(flag)]
    if missing:
        _fail(
            dist,
            f"its tasks {list(spaces)[:4]} differ in their spaces, but the protocol's agent does not set "
            f"{missing}: no agent built by the recipe could learn them all.",
        )


def _check_round_trip(dist: TaskDistribution, task: Task) -> None:
    back = dist.task_from_json(task.to_json())
    if back != task or back.to_json() != task.to_json():
        _fail(dist, f"task {task.id!r} does not round-trip through JSON.")


def _check_task_content(
    dist: TaskDistribution, task: Task, twin: TaskDistribution | None, steps: int
) -> None:
    if dist.kind == "supervised":
        data = task.load()
        _check_data(dist, task, data)
        _same_data(dist, task, data, task.load())
        if twin is not None:
            _same_data(dist, task, data, twin.task_from_dict(task.to_dict()).load())
    env = task.make_env()
    try:
        check_env(env.unwrapped, skip_render_check=True)
    except Exception as exc:  # re-raised with the task named
        raise ConformanceError(
            f"{dist.id}: env of task {task.id!r} fails gymnasium's check_env: {exc}"
        ) from exc
    finally:
        env.close()
    if _rollout(task, steps) != _rollout(task, steps):
        _fail(dist, f"two rollouts of task {task.id!r} with the same seed and actions differ.")


def _check_data(dist: TaskDistribution, task: Task, data: Any) -> None:
    if not isinstance(data, SupervisedData):
        _fail(dist, f"load() of {task.id!r} must return SupervisedData, got {type(data).__name__}.")
    for name in ("x_train", "x_test"):
        x = getattr(data, name)
        if tuple(x.shape[1:]) != tuple(data.input_shape) or x.shape[0] == 0:
            _fail(
                dist,
                f"{name} of {task.id!r} has shape {tuple(x.shape)}, expected (n>0, *{data.input_shape}).",
            )
    for name in ("x_train", "y_train", "x_test", "y_test"):
        value = getattr(data, name)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            _fail(dist, f"{name} of {task.id!r} holds NaN or Inf.")
    if data.loss not in LOSSES or data.metric not in METRICS:
        _fail(dist, f"loss {data.loss!r} / metric {data.metric!r} of {task.id!r} are not known names.")


def _same_data(dist: TaskDistribution, task: Task, a: SupervisedData, b: SupervisedData) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test", "x_query", "y_query"):
        left, right = getattr(a, name), getattr(b, name)
        if (left is None) != (right is None) or (left is not None and not torch.equal(left, right)):
            _fail(dist, f"two loads of task {task.id!r} gave different {name}.")


def _rollout(task: Task, steps: int) -> list[tuple[bytes, float, bool]]:
    envs = task.make_vector_env(2)
    try:
        envs.action_space.seed(123)
        obs, _ = envs.reset(seed=7)
        trace = [(np.asarray(obs).tobytes(), 0.0, False)]
        for _ in range(steps):
            obs, reward, terminated, _, _ = envs.step(envs.action_space.sample())
            trace.append((np.asarray(obs).tobytes(), float(np.sum(reward)), bool(np.any(terminated))))
        return trace
    finally:
        envs.close()
