"""Tasks and task distributions: the contract every family implements.

A :class:`TaskDistribution` has named splits. A split is *finite* (a fixed list of
tasks, fixed by the distribution's seed) or *infinite* (tasks are drawn from a
generator passed to :meth:`TaskDistribution.sample`). Held-out ``test`` tasks are
always finite, so every result names exactly which tasks it measured.

A :class:`Task` is a frozen record (``id``, ``split``, ``params``) that
round-trips through JSON; it keeps a reference to its distribution so that it can
build its data (:meth:`Task.load`) or its Gymnasium env (:meth:`Task.make_env`).
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from metaenvs.errors import InvalidArgumentError, WrongDistributionError
from metaenvs.protocol import Protocol, canonical_json, sha256_json
from metaenvs.registration import TaskSpec
from metaenvs.supervised_data import SupervisedData

if TYPE_CHECKING:
    import gymnasium as gym

SPLITS = ("train", "val", "test")
LOCATION_KWARGS = ("data_dir",)
"""Spec kwargs that say where data lives, not what it is: left out of the split hash."""


@dataclass(frozen=True)
class Task:
    """One learning problem drawn from a :class:`TaskDistribution`.

    Attributes:
        id: Stable across runs and machines (``"test/0003"``, ``"train/s1a2b..."``).
        split: The split the task belongs to.
        params: JSON-serialisable parameters that fully determine the task.
        dist_id: Id of the distribution the task came from.
    """

    id: str
    split: str
    params: Mapping[str, Any]
    dist_id: str
    _dist: TaskDistribution | None = field(default=None, compare=False, repr=False, hash=False)

    def __hash__(self) -> int:
        return hash((self.dist_id, self.split, self.id))

    @property
    def kind(self) -> str:
        return self._distribution().kind

    def _distribution(self) -> TaskDistribution:
        if self._dist is None:
            raise InvalidArgumentError(
                f"Task {self.id!r} is not bound to a distribution; rebuild it with "
                f"metaenvs.make({self.dist_id!r}).task_from_dict(...)."
            )
        return self._dist

    def load(self) -> SupervisedData:
        """Load the task's train and test tensors (supervised tasks only)."""
        dist = self._distribution()
        if not isinstance(dist, SupervisedTaskDistribution):
            raise InvalidArgumentError(
                f"Task {self.id!r} of {self.dist_id} is an RL task: it has no tensors to load; "
                "use task.make_env() instead."
            )
        return dist.load_task(self)

    def make_env(self, render_mode: str | None = None) -> gym.Env:
        """Build the task's Gymnasium env; a supervised task becomes a contextual bandit."""
        return self._distribution().make_env(self, render_mode=render_mode)

    def make_vector_env(self, num_envs: int, asynchronous: bool = False) -> gym.vector.VectorEnv:
        """Gymnasium vector env of ``num_envs`` copies of the task.

        Copies of :meth:`make_env` in Gymnasium's ``SyncVectorEnv`` (or ``AsyncVectorEnv``),
        unless the family has a native vector env (:attr:`native_vector_env`: Atari's
        ale-py ``AtariVectorEnv``, which resets sub-environments in the same step).
        """
        return self._distribution().make_vector_env(self, num_envs, asynchronous=asynchronous)

    @property
    def native_vector_env(self) -> bool:
        """Whether :meth:`make_vector_env` is the family's own fast vector env."""
        return self._distribution().native_vector_env

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "params": dict(self.params), "dist_id": self.dist_id}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())


class TaskDistribution(ABC):
    """A registered family of tasks with named splits.

    Subclasses set :attr:`kind`, implement :meth:`_split_sizes`, and either
    :meth:`_finite_task` (for finite splits) or :meth:`_sample_params` (for
    infinite ones), plus :meth:`default_protocol`.
    """

    kind: ClassVar[str]
    seed_decides_splits: ClassVar[bool] = True
    native_vector_env: ClassVar[bool] = False
    """Whether :meth:`make_vector_env` is the family's own fast vector env (which records raw episodes)."""
    held_out_tasks_are_a_sample: ClassVar[bool] = True
    """Whether the held-out tasks are a sample of the distribution (bootstrap CIs then resample
    tasks too) or a fixed benchmark set, such as a list of games."""
    """Whether the seed passed to ``make`` chooses the val/test tasks (False for fixed, listed splits)."""
    default_model: ClassVar[Mapping[str, Any]] = {"type": "mlp", "hidden": [40, 40], "activation": "tanh"}
    meta_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Per-algorithm meta-learner settings that this family needs where an algorithm's own defaults do
    not train it (``metaenvs train`` applies and prints them; ``metaenvs info`` lists them), e.g.
    ``{"leap": {"meta_lr": 0.01}}``."""
    renamed_kwargs: ClassVar[Mapping[str, str]] = {}
    """Old keyword -> its name now (the glossary's): :func:`metaenvs.make` refuses the old one and
    names the new one."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.spec = TaskSpec(id=f"Unregistered/{type(self).__name__}-v0", entry_point="unregistered:_")
        self._cache: dict[str, list[Task]] = {}

    def _bind(self, spec: TaskSpec, seed: int) -> None:
        self.spec, self.seed = spec, seed
        self._cache.clear()

    @property
    def id(self) -> str:
        return self.spec.id

    # ----- splits -----------------------------------------------------------------
    @abstractmethod
    def _split_sizes(self) -> Mapping[str, int | None]:
        """Size of each split; ``None`` marks an infinite split."""

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        """``(name, params)`` of task ``index`` of a finite split (deterministic in ``self.seed``)."""
        raise NotImplementedError(f"{type(self).__name__} has no finite split {split!r}")

    def _sample_params(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        """Draw the parameters of a new task of an infinite split."""
        raise NotImplementedError(f"{type(self).__name__} has no infinite split {split!r}")

    @property
    def splits(self) -> dict[str, int | None]:
        """Split name → number of tasks (``None`` for an infinite split)."""
        return dict(self._split_sizes())

    def _check_split(self, split: str) -> None:
        if split not in self._split_sizes():
            raise InvalidArgumentError(
                f"{self.id} has no split {split!r}; its splits are {', '.join(self._split_sizes())}."
            )

    def tasks(self, split: str) -> list[Task]:
        """Every task of a finite split, in a fixed order."""
        self._check_split(split)
        size = self._split_sizes()[split]
        if size is None:
            raise InvalidArgumentError(
                f"Split {split!r} of {self.id} is infinite; draw tasks with "
                f"dist.sample(rng, {split!r}, n) instead."
            )
        if split not in self._cache:
            self._cache[split] = [self._make_task(split, *self._finite_task(split, i)) for i in range(size)]
        return list(self._cache[split])

    def sample(self, rng: np.random.Generator, split: str = "train", n: int = 1) -> list[Task]:
        """Draw ``n`` tasks of ``split`` using ``rng``.

        Finite splits are sampled without replacement when ``n`` fits in the split,
        else with replacement. Infinite splits draw new tasks.
        """
        if not isinstance(rng, np.random.Generator):
            raise InvalidArgumentError(
                f"sample() needs a numpy.random.Generator, got {type(rng).__name__}; "
                "pass numpy.random.default_rng(seed)."
            )
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
            raise InvalidArgumentError(f"n must be a positive int (tasks per batch), got {n!r}.")
        self._check_split(split)
        if self._split_sizes()[split] is None:
            return [self._sampled_task(split, self._sample_params(rng, split)) for _ in range(n)]
        pool = self.tasks(split)
        idx = rng.choice(len(pool), size=n, replace=n > len(pool))
        return [pool[int(i)] for i in idx]

    def _sampled_task(self, split: str, params: dict[str, Any]) -> Task:
        return self._make_task(split, "s" + sha256_json(params)[:16], params)

    def _make_task(self, split: str, name: str, params: dict[str, Any]) -> Task:
        return Task(id=f"{split}/{name}", split=split, params=params, dist_id=self.id, _dist=self)

    @property
    def split_rule(self) -> str | None:
        """How the splits are made, in words, where the family states it (``metaenvs info`` shows it)."""
        return None

    def split_manifest(self) -> dict[str, list[str]]:
        """Task ids of every finite split (the held-out set is named here)."""
        return {s: [t.id for t in self.tasks(s)] for s, n in self._split_sizes().items() if n is not None}

    def split_hash(self) -> str:
        """sha256 of every finite split's tasks (ids and params) and the spec: which tasks are which."""
        splits = {
            s: [t.to_dict() for t in self.tasks(s)] for s, n in self._split_sizes().items() if n is not None
        }
        spec = json.loads(self.spec.to_json())
        spec["kwargs"] = {k: v for k, v in spec["kwargs"].items() if k not in LOCATION_KWARGS}
        return sha256_json({"spec": spec, "splits": splits})

    def recorded_split_hash(self) -> tuple[str, str] | None:
        """``(split hash, what it was computed with)`` the suite recorded for this registered id at seed 0.

        ``None`` (the default) where nothing outside the suite decides the splits. Families whose tasks
        come from another library (Meta-World) record the hashes that library's version gave, and
        :func:`metaenvs.testing.check_task_distribution` fails when the installed one gives others.
        """
        return None

    # ----- tasks from elsewhere ---------------------------------------------------
    def check_task(self, task: Task) -> Task:
        """Return ``task`` bound to this distribution, or raise if it came from another one."""
        if not isinstance(task, Task):
            raise InvalidArgumentError(f"Expected a metaenvs Task, got {type(task).__name__}.")
        if task.dist_id != self.id:
            raise WrongDistributionError(
                f"Task {task.id!r} comes from {task.dist_id}, not from {self.id}. Use tasks from "
                f"metaenvs.make({self.id!r}), or build the agent for {task.dist_id}."
            )
        if task._dist is self:
            return task
        own = self._own_params(task)
        if own is None or canonical_json(own) != canonical_json(dict(task.params)):
            raise WrongDistributionError(
                f"Task {task.id!r} ({task.split}) has params {_short(task.params)}, but {self.id} (seed "
                f"{self.seed}) has {'no such task' if own is None else 'params ' + _short(own)}: the task "
                f"comes from another instance of {task.dist_id} (another seed, version or data). Use tasks "
                f"from this distribution object, or metaenvs.make({task.dist_id!r}, seed=...) with the seed "
                "the task was drawn from."
            )
        return Task(task.id, task.split, task.params, task.dist_id, _dist=self)

    def _own_params(self, task: Task) -> dict[str, Any] | None:
        """The params this distribution gives the task with ``task``'s id (``None``: it has none)."""
        sizes = self._split_sizes()
        if task.split not in sizes:
            return None
        if sizes[task.split] is None:  # a sampled task: its id is the hash of its params
            return (
                dict(task.params) if self._sampled_task(task.split, dict(task.params)).id == task.id else None
            )
        return next((dict(t.params) for t in self.tasks(task.split) if t.id == task.id), None)

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        """Rebuild a task from :meth:`Task.to_dict` output, bound to this distribution."""
        try:
            task = Task(str(data["id"]), str(data["split"]), dict(data["params"]), str(data["dist_id"]))
        except KeyError as exc:
            raise InvalidArgumentError(f"Task record lacks the field {exc}; got {sorted(data)}.") from exc
        return self.check_task(task)

    def task_from_json(self, text: str) -> Task:
        return self.task_from_dict(json.loads(text))

    # ----- protocol and envs --------------------------------------------------------
    @abstractmethod
    def default_protocol(self) -> Protocol:
        """The official evaluation recipe."""

    @property
    def protocol(self) -> Protocol:
        return self.default_protocol()

    def check_protocol(self, protocol: Protocol) -> None:
        """Refuse a protocol this distribution cannot be scored under (``evaluate`` calls this).

        The default accepts any protocol of this distribution; families with a standard (Atari's
        Machado et al. 2018) refuse departures that are not marked non-standard.
        """
        return None

    def make_vector_env(self, task: Task, num_envs: int, asynchronous: bool = False) -> gym.vector.VectorEnv:
        """``num_envs`` copies of :meth:`make_env` in a vector env; see :meth:`Task.make_vector_env`."""
        import gymnasium as gym

        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs <= 0:
            raise InvalidArgumentError(f"num_envs must be a positive int, got {num_envs!r}.")
        fns = [self.env_factory(task)] * num_envs
        return gym.vector.AsyncVectorEnv(fns) if asynchronous else gym.vector.SyncVectorEnv(fns)

    def env_factory(self, task: Task) -> Callable[[], gym.Env]:
        """What each copy of :meth:`make_vector_env` calls (an async worker unpickles and calls it).

        The default calls :meth:`make_env`; a family whose distribution is costly to rebuild in a worker
        returns something lighter (Meta-World: the task's env class and task).
        """
        return functools.partial(self.make_env, task)

    def normalize_score(self, task: Task, score: float) -> float | None:
        """The protocol's normalised score of a raw ``score`` on ``task``; ``None`` if it has none.

        The default has no normalisation; Atari maps raw game scores to human-normalised ones.
        """
        return None

    @abstractmethod
    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        """Build a Gymnasium env for ``task``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} seed={self.seed} splits={self.splits}>"


class SupervisedTaskDistribution(TaskDistribution):
    """A distribution of supervised tasks (regression, classification, rating prediction)."""

    kind = "supervised"

    @abstractmethod
    def load_task(self, task: Task) -> SupervisedData:
        """Build the tensors of ``task`` (deterministic in ``task.params``)."""

    def inner_loop_protocol(
        self,
        budget: int,
        metric: str,
        lr: float,
        batch_size: int | None = None,
        seeds: tuple[int, ...] = (0, 1, 2),
        optimizer: str = "sgd",
        **extra: Any,
    ) -> Protocol:
        """The usual supervised recipe: ``budget`` optimizer steps of ``optimizer`` at ``lr`` per task.

        The metric's direction comes from :mod:`metaenvs.metrics`; ``extra`` goes to :class:`Protocol`.
        """
        from metaenvs.metrics import get_metric

        return Protocol(
            dist_id=self.id,
            budget=budget,
            budget_unit="inner_steps",
            seeds=tuple(seeds),
            metric=metric,
            higher_is_better=get_metric(metric)[1],
            agent={
                "type": "supervised",
                "optimizer": optimizer,
                "lr": lr,
                "batch_size": batch_size,
                "model": dict(self.default_model),
            },
            **extra,
        )

    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        from metaenvs.bandit import SupervisedBanditEnv

        task = self.check_task(task)
        return SupervisedBanditEnv(task.load(), render_mode=render_mode)


class RLTaskDistribution(TaskDistribution):
    """A distribution of RL tasks; each task builds a Gymnasium env."""

    kind = "rl"
    default_model: ClassVar[Mapping[str, Any]] = {"type": "sb3_mlp", "net_arch": [64, 64]}
    frames_per_step: int = 1
    """Emulator frames per env timestep (Atari's frame skip); progress and results count frames."""

    def return_protocol(self, budget: int, agent: Mapping[str, Any]) -> Protocol:
        """The usual RL recipe: ``budget`` env timesteps, seeds 0-2, mean undiscounted return."""
        return Protocol(
            dist_id=self.id,
            budget=budget,
            budget_unit="timesteps",
            seeds=(0, 1, 2),
            metric="return",
            higher_is_better=True,
            agent=dict(agent),
        )


def _short(value: Any, limit: int = 120) -> str:
    text = canonical_json(value) if isinstance(value, Mapping) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choose_disjoint(rng: np.random.Generator, items: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    """Shuffle ``items`` with ``rng`` and cut consecutive, disjoint groups of the given sizes."""
    if sum(sizes) > len(items):
        raise InvalidArgumentError(f"Cannot cut groups of sizes {list(sizes)} from {len(items)} items.")
    order = rng.permutation(len(items))
    groups, start = [], 0
    for size in sizes:
        groups.append([items[int(i)] for i in order[start : start + size]])
        start += size
    return groups
