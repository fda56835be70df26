"""The Ray executor: the tasks of each meta-batch as Ray tasks, or as Ray actors in lockstep (CTS).

* Independent tasks (every meta-learner but CTS) are Ray *tasks*. A worker
  receives the agent (once per run, through the object store), a copy of the
  meta-learner with its current initialization, the task and its seed; it runs
  the task from reset accumulators and returns the curve and the learner's
  :meth:`~baselines.base.MetaLearner.contribution`. The driver merges the
  contributions in task order (see :mod:`baselines.executors`), so the result is
  bitwise the local executor's. A worker that dies (killed, out of memory, node
  lost) is retried by Ray (``max_retries``); a task is a pure function of its
  inputs, so a retry computes the same contribution and nothing is lost.
* CTS needs one meta-update after every inner step across all tasks, so its
  tasks run in Ray *actors* with a synchronous step: each actor holds one task's
  agent, optimizer and generator; the driver asks every actor for one inner step,
  gathers the tasks' parameters, takes the meta-step and sends the shift back.
  An actor that dies is replaced and its task replayed from the start with the
  shifts recorded so far (the replay is deterministic), so nothing is lost.

Workers run with the driver's number of torch threads so that CPU arithmetic is
identical. The cluster needs this package (and the data, under the same
``METAENVS_DATA``) installed on every node.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from agents.curves import LearningCurve
from agents.hooks import Hook, StepEndContext, TaskStartContext
from agents.parameters import copy_into
from baselines.base import MetaLearner
from baselines.executors import declares_contributions, learn_one, merge_all
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, MissingDependencyError

INSTALL_HINT = 'pip install "metaenvs[ray]"  (or: pip install "ray>=2.9")'


def import_ray() -> Any:
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"executor='ray' needs Ray, which is not installed. Install it with: {INSTALL_HINT}"
        ) from exc
    return ray


def _run_task(
    agent: Any, learner: MetaLearner, task: Any, steps: int, seed: int, threads: int
) -> tuple[LearningCurve, dict[str, Any]]:
    """Body of a Ray task: one task of the meta-batch; its curve and the learner's contribution."""
    torch.set_num_threads(threads)
    curve = learn_one(agent, learner, task, steps, seed)
    return curve, learner.contribution()


class _Pause(Hook):
    """Writes the initialization at task start and pauses the learning thread at every step end."""

    def __init__(self, init: Mapping[str, torch.Tensor]) -> None:
        self.init = init
        self.params: Mapping[str, torch.Tensor] = {}
        self.go, self.paused = threading.Semaphore(0), threading.Semaphore(0)
        self.finished = False

    def on_task_start(self, ctx: TaskStartContext) -> None:
        copy_into(ctx.model, self.init)

    def on_step_end(self, ctx: StepEndContext) -> None:
        self.params = ctx.params
        self.paused.release()
        self.go.acquire()


class LockstepWorker:
    """One task of a CTS meta-batch, advanced one inner step per :meth:`advance` (a Ray actor)."""

    def __init__(self, agent: Any, threads: int) -> None:
        torch.set_num_threads(threads)
        self.agent = agent
        self.curve: LearningCurve | None = None
        self.error: BaseException | None = None

    def start(
        self, task: Any, steps: int, seed: int, init: Mapping[str, torch.Tensor], fresh: bool = False
    ) -> int:
        """Begin ``task`` from ``init`` (the thread waits for the first :meth:`advance`); the pid.

        ``fresh``: reset the agent with the task's seed first (``MetaLearner.starts_tasks_fresh``)."""
        if fresh:
            self.agent.reset(seed)
        self.pause, self.curve, self.error = _Pause(init), None, None
        self.names = list(init)
        self.thread = threading.Thread(target=self._learn, args=(task, steps, seed), daemon=True)
        self.thread.start()
        return os.getpid()

    def _learn(self, task: Any, steps: int, seed: int) -> None:
        self.pause.go.acquire()
        try:
            self.curve = self.agent.learn(task, steps, hooks=[self.pause], seed=seed)
        except BaseException as exc:  # raised to the driver by advance()
            self.error = exc
        finally:
            self.pause.finished = True
            self.pause.paused.release()

    def advance(self) -> dict[str, torch.Tensor] | None:
        """Run to the end of the next inner step; the meta-learned parameters then (``None``: done)."""
        self.pause.go.release()
        self.pause.paused.acquire()
        if self.error is not None:
            raise self.error
        if self.pause.finished:
            return None
        return {n: self.pause.params[n].detach().clone() for n in self.names}

    def shift(self, delta: Sequence[torch.Tensor]) -> None:
        """Add the CTS shift to the paused task's parameters."""
        with torch.no_grad():
            torch._foreach_add_([self.pause.params[n] for n in self.names], list(delta))

    def result(self) -> LearningCurve:
        self.thread.join()
        return self.curve


class RayExecutor:
    """Runs meta-batches on Ray (a local instance, or an existing cluster by ``address``).

    Args:
        agent: The agent; shipped to the workers once.
        address: Cluster address (``"auto"``, ``"HOST:6379"``); ``None`` starts a local instance (or
            uses the one this process already initialised).
        num_cpus: CPUs of a local instance started here (``None``: all).
        max_retries: Retries of a task (or replays of a CTS actor) whose worker died.
    """

    def __init__(
        self, agent: Any, address: str | None = None, num_cpus: int | None = None, max_retries: int = 3
    ) -> None:
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False}
            if address is None:  # a new local instance, even if this machine is part of a cluster
                address, options["num_cpus"] = "local", num_cpus
            try:
                ray.init(address=address, **options)
            except ConnectionError as exc:
                raise InvalidArgumentError(
                    f"Could not connect to a Ray cluster at {address!r}: {exc}. Start one with "
                    "`ray start --head` and pass address 'auto' on its nodes (or HEAD_IP:PORT; if Ray "
                    "reports an authentication error, the driver needs the cluster's token, see Ray's "
                    "token-authentication docs), or pass no address for a local Ray instance."
                ) from exc
        self.max_retries = int(max_retries)
        self._fresh = False  # of the current lockstep meta-batch (MetaLearner.starts_tasks_fresh)
        self.threads = torch.get_num_threads()
        self.agent_ref = ray.put(agent)
        self._task = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(_run_task)
        self._worker_cls = ray.remote(max_restarts=0, max_concurrency=1)(LockstepWorker)
        self._actors: list[Any] = []

    def run_tasks(
        self, tasks: Sequence[Any], steps: int, learner: MetaLearner, seeds: Sequence[int]
    ) -> list[LearningCurve]:
        """Independent tasks as Ray tasks; contributions merged in task order."""
        if not declares_contributions(learner):
            raise InvalidArgumentError(
                f"{type(learner).__name__} overrides reset_accumulators but does not list its "
                "accumulators, so its workers' results could not come back. Set the class attribute "
                "accumulators = ('_sum', ...) to the attributes reset_accumulators sets, or use "
                "executor='local'."
            )
        learner.reset_accumulators()
        learner_ref = self.ray.put(learner)
        refs = [
            self._task.remote(self.agent_ref, learner_ref, task, steps, seed, self.threads)
            for task, seed in zip(tasks, seeds, strict=True)
        ]
        results = self._get(refs)
        merge_all(learner, [contribution for _, contribution in results])
        return [curve for curve, _ in results]

    def run_lockstep(
        self, tasks: Sequence[Any], steps: int, learner: MetaLearner, seeds: Sequence[int]
    ) -> list[LearningCurve]:
        """CTS: one actor per task, a synchronous inner step, the meta-step and the shift on the driver."""
        if getattr(learner, "accurate", False):
            raise IncompatibleAgentError(
                "CTS(accurate=True) re-trains every task on the driver; run it with executor='local'."
            )
        jobs = list(zip(tasks, seeds, strict=True))
        init = learner.initialization()
        self._fresh = learner.starts_tasks_fresh
        while len(self._actors) < len(jobs):
            self._actors.append(self._worker_cls.remote(self.agent_ref, self.threads))
        actors = zip(self._actors, jobs, strict=False)
        self._get([actor.start.remote(task, steps, s, init, self._fresh) for actor, (task, s) in actors])
        shifts: list[list[torch.Tensor]] = []
        while True:
            params = [self._advance(i, jobs[i], steps, init, shifts) for i in range(len(jobs))]
            if all(p is None for p in params):
                break
            if any(p is None for p in params):
                raise InvalidArgumentError(
                    "The tasks of a CTS meta-batch took different numbers of inner steps; CTS needs "
                    "them equal (same budget, same steps per update)."
                )
            shift = learner.step_and_shift(params)
            shifts.append(shift)
            self._get([actor.shift.remote(shift) for actor in self._actors[: len(jobs)]])
        return self._get([actor.result.remote() for actor in self._actors[: len(jobs)]])

    def _advance(self, i: int, job: tuple, steps: int, init: Any, shifts: list) -> Any:
        """``advance()`` of actor ``i``; a dead actor is replaced and its task replayed through ``shifts``."""
        for _ in range(self.max_retries + 1):
            try:
                return self._get([self._actors[i].advance.remote()])[0]
            except self.ray.exceptions.RayActorError:
                self._actors[i] = self._replay(job, steps, init, shifts)
        raise InvalidArgumentError(
            f"The actor of CTS task {i} died {self.max_retries + 1} times; raise max_retries or "
            "check the node."
        )

    def _replay(self, job: tuple, steps: int, init: Any, shifts: list) -> Any:
        """A fresh actor that has re-run ``job`` through the recorded shifts (deterministic)."""
        actor = self._worker_cls.remote(self.agent_ref, self.threads)
        self._get([actor.start.remote(job[0], steps, job[1], init, self._fresh)])
        for shift in shifts:
            self._get([actor.advance.remote()])
            self._get([actor.shift.remote(shift)])
        return actor

    def _get(self, refs: list) -> list:
        """``ray.get``; a task's own exception is raised as itself (e.g. ``NonFiniteError``)."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
