"""Meta-World v3's meta-learning benchmarks (ML1, ML10, ML45) as task distributions.

A task is one (class, goal) pair of Meta-World's own benchmark for the distribution's seed: ML1
varies the goal within one class (train and test goals from Meta-World's sampler, seeds ``seed``
and ``seed + 1``); ML10 and ML45 hold out whole classes, exactly Meta-World's split. The held-out
split is the first ``test_tasks_per_class`` goals of every test class, as Meta-World's own
``total_tasks_per_cls`` takes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym

from metaenvs.core import RLTaskDistribution, Task
from metaenvs.errors import InvalidArgumentError, WrongDistributionError
from metaenvs.metaworld.envs import (
    BENCHMARKS,
    MAX_PATH_LENGTH,
    MetaWorldTaskEnv,
    benchmark,
    goal_vectors,
    metaworld_version,
    ml1_env_names,
)
from metaenvs.protocol import Protocol
from metaenvs.validation import one_of, positive_int

SCALES: dict[str, dict[str, Any]] = {
    # "cpu", the official protocol: 10 held-out tasks x 5 seeds x (10,000 timesteps of PPO + 3
    # evaluation episodes) = 575,000 env steps, about 15 minutes on one core of a 2-core machine.
    "cpu": {"test_tasks_per_class": {"ML1": 10, "ML10": 2, "ML45": 2}, "budget": 10_000, "seeds": 5},
    # "full": every held-out goal Meta-World samples (50 per class), 50,000 timesteps, 10 seeds.
    "full": {"test_tasks_per_class": {"ML1": 50, "ML10": 50, "ML45": 50}, "budget": 50_000, "seeds": 10},
}
EVAL_EPISODES = 3
"""Evaluation episodes per task and seed after adaptation (``metaworld.evaluation.metalearning_evaluation``'s
``evaluation_episodes``)."""


class MetaWorldML(RLTaskDistribution):
    """One of Meta-World's meta-learning benchmarks, its tasks as Gymnasium envs.

    Args:
        benchmark: ``"ML1"``, ``"ML10"`` or ``"ML45"``.
        env_name: ML1's env (``"reach-v3"``, ``"push-v3"``, ...); only for ML1.
        scale: ``"cpu"`` (the official protocol, sized for a 2-core machine) or ``"full"`` (every
            held-out goal, a larger budget and more seeds, for a bigger machine).
        test_tasks_per_class: Held-out goals per test class; the scale's by default.
        budget: The protocol's adaptation budget in env timesteps; the scale's by default.
        seed: Meta-World's benchmark seed (0 is the official split).
    """

    default_model: ClassVar = {"type": "sb3_mlp", "net_arch": {"pi": [64, 64], "vf": [64, 64]}}

    def __init__(
        self,
        benchmark: str,
        env_name: str | None = None,
        scale: str = "cpu",
        test_tasks_per_class: int | None = None,
        budget: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.benchmark = one_of("benchmark", benchmark, BENCHMARKS)
        names = ml1_env_names()
        if self.benchmark == "ML1":
            if env_name not in names:
                raise InvalidArgumentError(
                    f"Unknown ML1 env {env_name!r}; Meta-World's ML1 envs are: {', '.join(names)}."
                )
        elif env_name is not None:
            raise InvalidArgumentError(f"env_name is for ML1 only; {benchmark} has its own classes.")
        self.env_name = env_name
        self.scale = one_of("scale", scale, tuple(SCALES))
        default = SCALES[self.scale]["test_tasks_per_class"][self.benchmark]
        self.test_tasks_per_class = positive_int(
            "test_tasks_per_class", default if test_tasks_per_class is None else test_tasks_per_class
        )
        if self.test_tasks_per_class > 50:
            raise InvalidArgumentError(
                f"test_tasks_per_class must be at most 50 (Meta-World samples 50 goals per class), "
                f"got {self.test_tasks_per_class}."
            )
        self.budget = positive_int("budget", SCALES[self.scale]["budget"] if budget is None else budget)
        self._lists: dict[str, list[tuple[str, int, list[float]]]] | None = None

    def _bind(self, spec: Any, seed: int) -> None:
        super()._bind(spec, seed)
        self._lists = None

    # ----- splits: Meta-World's own, built on first use ------------------------------------------
    def _benchmark(self) -> Any:
        return benchmark(self.benchmark, self.env_name, self.seed)

    def _task_lists(self) -> dict[str, list[tuple[str, int, list[float]]]]:
        """split -> [(class, goal index, goal vector)], in Meta-World's order."""
        if self._lists is None:
            lists: dict[str, list[tuple[str, int, list[float]]]] = {}
            for split, per_class in (("train", None), ("test", self.test_tasks_per_class)):
                rows = []
                for name, env_cls in self._classes(split).items():
                    own = self._class_tasks(split, name)[:per_class]
                    rows += [(name, i, goal) for i, goal in enumerate(goal_vectors(env_cls, own))]
                lists[split] = rows
            self._lists = lists
        return self._lists

    def _split_sizes(self) -> dict[str, int | None]:
        return {split: len(rows) for split, rows in self._task_lists().items()}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        name, goal_index, goal = self._task_lists()[split][index]
        return f"{name}-{goal_index:02d}", {"class": name, "goal_index": goal_index, "rand_vec": goal}

    @property
    def classes(self) -> dict[str, list[str]]:
        """split -> Meta-World's class names, in its order."""
        return {split: list(self._classes(split)) for split in ("train", "test")}

    def recorded_split_hash(self) -> tuple[str, str] | None:
        """The split hash :data:`metaenvs.metaworld.hashes.RECORDED_WITH` gave this id at seed 0."""
        from metaenvs.metaworld.hashes import RECORDED_WITH, SPLIT_HASHES
        from metaenvs.registration import registry

        if self.seed != 0 or self.id not in SPLIT_HASHES or registry.get(self.id) != self.spec:
            return None
        return SPLIT_HASHES[self.id], f"Meta-World {RECORDED_WITH} (installed: {metaworld_version()})"

    # ----- envs -----------------------------------------------------------------------------------
    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        cls, mw_task = self._env_parts(task)
        env = MetaWorldTaskEnv(cls, mw_task, render_mode=render_mode)
        if [float(v) for v in env.env._last_rand_vec] != list(task.params["rand_vec"]):
            env.close()
            raise WrongDistributionError(
                f"Task {task.id!r}: Meta-World {metaworld_version()} sets another goal than the task "
                f"records; its split was made with another Meta-World version."
            )
        return env

    def env_factory(self, task: Task) -> Callable[[], gym.Env]:
        """Builds a copy from the task's Meta-World class and task, so that an asynchronous worker does
        not rebuild the benchmark (ML45 takes about 30 s); the goal is checked here, once."""
        self.make_env(task).close()
        return functools.partial(MetaWorldTaskEnv, *self._env_parts(task))

    def _env_parts(self, task: Task) -> tuple[type, Any]:
        """Meta-World's env class and task for ``task`` (checked to belong to this distribution)."""
        task = self.check_task(task)
        name = task.params["class"]
        return self._classes(task.split)[name], self._class_tasks(task.split, name)[
            int(task.params["goal_index"])
        ]

    def _classes(self, split: str) -> Any:
        bench = self._benchmark()
        return bench.train_classes if split == "train" else bench.test_classes

    def _class_tasks(self, split: str, name: str) -> list[Any]:
        """The benchmark's tasks of class ``name`` in ``split``, in Meta-World's order."""
        bench = self._benchmark()
        return [
            t for t in (bench.train_tasks if split == "train" else bench.test_tasks) if t.env_name == name
        ]

    def default_protocol(self) -> Protocol:
        scale = SCALES[self.scale]
        agent = {  # PPO on a Gaussian MLP (the Meta-World paper's meta-RL baselines are PPO/TRPO based)
            "type": "actor_critic",
            "algo": "ppo",
            "n_envs": 4,
            "policy": "MlpPolicy",
            "policy_kwargs": {"net_arch": {"pi": [64, 64], "vf": [64, 64]}},
            "algo_kwargs": {
                "n_steps": MAX_PATH_LENGTH,  # one episode per env per rollout
                "batch_size": 500,
                "n_epochs": 10,
                "learning_rate": 3e-4,
                "gamma": 0.99,
                "gae_lambda": 0.95,
                "clip_range": 0.2,
                "ent_coef": 0.0,
            },
            "eval_episodes": EVAL_EPISODES,
        }
        return Protocol(
            dist_id=self.id,
            name=self.scale,
            budget=self.budget,
            budget_unit="timesteps",
            seeds=tuple(range(int(scale["seeds"]))),
            metric="success_rate",
            higher_is_better=True,
            agent=agent,
            min_seeds=int(scale["seeds"]),
            env={
                "metaworld": metaworld_version(),
                "max_path_length": MAX_PATH_LENGTH,
                "partially_observable": True,  # the ML benchmarks hide the goal
                "success": "info['success'] at any step of the episode",
                "second_metric": "return",
            },
        )
