"""Actor-critic agents on stable-baselines3 (A2C, PPO) with a hook at every gradient step.

SB3 has no event at gradient steps. Two thin, documented pieces add one without
copying SB3's training code:

* :class:`LossTap` — a ``TorchFunctionMode`` active only inside ``train()`` that
  records the tensor ``backward()`` is called on: the loss actually
  back-propagated;
* optimizer step hooks on the policy's optimizer: the pre-hook
  (``Optimizer.register_step_pre_hook``) runs after ``backward()`` and gradient
  clipping, just before ``optimizer.step()``, and fires ``on_inner_step`` with that
  loss, the live parameters and their (clipped) gradients; the post-hook fires
  ``on_step_end`` with the updated parameters.

The policy (:attr:`ActorCritic.model`) persists across tasks; each call to
:meth:`ActorCritic.learn` builds a fresh SB3 algorithm around it with a fresh
optimizer, so optimizer state never leaks from one task to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor
from torch import nn

from agents.curves import LearningCurve, training_score
from agents.hooks import (
    Capabilities,
    Hook,
    HookList,
    TaskEndContext,
    TaskStartContext,
)
from agents.parameters import copy_into
from agents.sb3_hooks import (
    ALGORITHMS,
    EVAL_MODES,
    VECTORIZERS,
    EpisodeRecorder,
    GradientStepEvents,
    LossTap,
    SuccessRecorder,
    check_gradient_events,
    check_init_spaces,
    resolve_policy_kwargs,
)
from agents.vec_env import GymnasiumVecEnv, recorded_returns, records_episodes
from metaenvs.core import Task
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.seeding import derive_seed, scoped_global_seed
from metaenvs.spaces import adaptation_needed
from metaenvs.validation import one_of, positive_int


class ActorCritic:
    """An SB3 actor-critic that learns one RL task from the current :attr:`model`.

    Args:
        observation_space: Observation space shared by the distribution's tasks.
        action_space: Action space shared by the distribution's tasks.
        algo: ``"a2c"`` or ``"ppo"``.
        n_envs: Parallel envs per task.
        policy: SB3 policy alias (``"MlpPolicy"``, ``"CnnPolicy"``).
        policy_kwargs: Passed to the SB3 policy.
        algo_kwargs: Passed to the SB3 algorithm (``learning_rate``, ``n_steps``, ...).
        eval_episodes: Episodes of :meth:`evaluate`.
        eval_mode: ``"rollouts"``: :meth:`evaluate` runs ``eval_episodes`` new deterministic
            episodes; ``"training"``: it scores the last ``eval_episodes`` episodes that
            finished while :meth:`learn` trained on the task (Machado et al. 2018, sec. 5:
            report the average of the last episodes of training, no separate evaluation).
        adapt_action_head: Let tasks differ in their number of discrete actions (Atari games):
            a task with another action count gets a policy with a freshly initialised action
            head (seeded by the task's seed), every other parameter carried over. Meta-learn
            the shared part only (e.g. ``Leap(params=["features_extractor"])``).
        adapt_input_layer: Let tasks differ in the size of a flat Box observation (Gymnasium env
            lists): a task with another size gets fresh first layers of the MLP extractor (seeded by
            the task's seed), every other parameter carried over; meta-learn
            :attr:`shared_parameters`.
        vectorizer: ``"auto"`` (the task's native vector env where it has one, as Atari's
            ale-py ``AtariVectorEnv``; else SB3's ``DummyVecEnv``) or ``"dummy"`` (always
            ``DummyVecEnv`` over ``task.make_env``).
        seed: Seed of the initial parameters.
        device: Torch device.
    """

    capabilities = Capabilities(first_order=True, differentiable=False, batched=False)
    step_unit = "timesteps"

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        algo: str = "a2c",
        n_envs: int = 8,
        policy: str = "MlpPolicy",
        policy_kwargs: Mapping[str, Any] | None = None,
        algo_kwargs: Mapping[str, Any] | None = None,
        eval_episodes: int = 10,
        eval_mode: str = "rollouts",
        adapt_action_head: bool = False,
        vectorizer: str = "auto",
        seed: int = 0,
        device: str = "cpu",
        adapt_input_layer: bool = False,
    ) -> None:
        self.algo = one_of("algo", algo, ALGORITHMS)
        self.vectorizer = one_of("vectorizer", vectorizer, VECTORIZERS)
        self.adapt_action_head = bool(adapt_action_head)
        self.adapt_input_layer = bool(adapt_input_layer)
        self.n_envs = positive_int("n_envs", n_envs)
        self.eval_episodes = positive_int("eval_episodes", eval_episodes)
        self.eval_mode = one_of("eval_mode", eval_mode, EVAL_MODES)
        self.policy_alias = policy
        self.policy_kwargs = dict(policy_kwargs or {})
        self._sb3_policy_kwargs = resolve_policy_kwargs(self.policy_kwargs)
        self.algo_kwargs = dict(algo_kwargs or {})
        self.device = device
        self.observation_space, self.action_space = observation_space, action_space
        algo_cls = ALGORITHMS[self.algo]
        if policy not in algo_cls.policy_aliases:
            raise InvalidArgumentError(
                f"policy must be one of {list(algo_cls.policy_aliases)}, got {policy!r}."
            )
        self._policy_cls = algo_cls.policy_aliases[policy]
        self.model: nn.Module = self._build_policy()
        self.reset(seed)

    def _build_policy(self) -> nn.Module:
        """A new SB3 policy for the current spaces (its optimizer is replaced per task, see _adopt).

        Its construction draws from torch's global generator under a fork: the caller's state is kept.
        """
        with torch.random.fork_rng(devices=[]):
            policy = self._policy_cls(
                self.observation_space, self.action_space, lambda _: 1e-3, **self._sb3_policy_kwargs
            )
        return policy.to(self.device)

    @classmethod
    def for_distribution(cls, dist: Any, seed: int = 0, **overrides: Any) -> ActorCritic:
        """Build the agent a distribution's protocol prescribes (spaces read from one test task)."""
        recipe = {k: v for k, v in dist.protocol.agent.items() if k != "type"}
        env = dist.tasks(dist.protocol.split)[0].make_env()
        try:
            return cls(env.observation_space, env.action_space, seed=seed, **{**recipe, **overrides})
        finally:
            env.close()

    @property
    def shared_parameters(self) -> list[str] | None:
        """Prefixes of the parameters every task shares, the ones to meta-learn.

        All (``None``) when nothing adapts; the encoder (``features_extractor``) when only the action
        head adapts (Atari); with ``adapt_input_layer``, every parameter except the first layer of
        each MLP extractor net (sized by the observation) and, with ``adapt_action_head``, the action
        head (sized by the number of actions).
        """
        if not self.adapt_input_layer:
            return ["features_extractor"] if self.adapt_action_head else None
        adapted = set(self._input_layers())
        if self.adapt_action_head:
            adapted.add("action_net")
        names = {name.rsplit(".", 1)[0] for name, _ in self.model.named_parameters()}
        return sorted(n for n in names if not any(n == a or n.startswith(a + ".") for a in adapted))

    def _input_layers(self) -> list[str]:
        """Names of the layers whose shape follows the observation: the first Linear of each MLP net."""
        layers = []
        for net in ("policy_net", "value_net", "shared_net"):
            module = getattr(getattr(self.model, "mlp_extractor", None), net, None)
            first = (
                next((n for n, m in module.named_children() if isinstance(m, nn.Linear)), None)
                if module
                else None
            )
            if first is not None:
                layers.append(f"mlp_extractor.{net}.{first}")
        return layers

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "type": "actor_critic",
            "algo": self.algo,
            "n_envs": self.n_envs,
            "policy": self.policy_alias,
            "policy_kwargs": self.policy_kwargs,
            "algo_kwargs": self.algo_kwargs,
            "eval_episodes": self.eval_episodes,
            "eval_mode": self.eval_mode,
            "adapt_action_head": self.adapt_action_head,
            "adapt_input_layer": self.adapt_input_layer,
            "vectorizer": self.vectorizer,
        }

    def set_parameters(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Write an initialization (all parameters or a named subset) into the policy.

        Raises:
            IncompatibleAgentError: If the initialization was made for other observation or action
                shapes, naming both.
        """
        check_init_spaces(self, tensors)
        copy_into(self.model, tensors)

    @torch.no_grad()
    def reset(self, seed: int) -> None:
        """Re-initialise the policy from ``seed`` with SB3's own initialisation.

        SB3 initialises a policy as it builds it, from torch's global generator; a policy is built here
        under a forked global generator seeded with ``seed`` (the caller's global state is untouched)
        and its parameters are copied into :attr:`model`.
        """
        self._reset_seed = seed
        with scoped_global_seed(seed):
            fresh = self._build_policy()
        self.model.load_state_dict(fresh.state_dict())

    def _fit_spaces(self, task: Task, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Fit the policy to the task's spaces (see ``adapt_action_head`` / ``adapt_input_layer``) or
        refuse the task."""
        if observation_space == self.observation_space and action_space == self.action_space:
            return
        try:
            flags = adaptation_needed(
                (self.observation_space, self.action_space),
                (observation_space, action_space),
                ("built", task.id),
            )
        except IncompatibleAgentError as exc:
            raise IncompatibleAgentError(f"{exc} This agent cannot learn task {task.id!r}.") from exc
        missing = [flag for flag in flags if not getattr(self, flag)]
        if missing:
            raise IncompatibleAgentError(
                f"Task {task.id!r} has spaces {observation_space} / {action_space}, but this agent was built "
                f"for {self.observation_space} / {self.action_space}; it needs "
                + " and ".join(f"{flag}=True" for flag in missing)
                + " (the distribution's protocol sets these when its tasks' spaces differ)."
            )
        self._adapt(observation_space, action_space)

    def _make_envs(self, task: Task, num_envs: int) -> tuple[VecEnv, bool]:
        """``num_envs`` copies of the task, the policy fitted to them, and whether they record episodes.

        The task's native vector env (which records raw episode scores itself) when it has one
        and ``vectorizer="auto"``; else SB3's ``DummyVecEnv`` over ``task.make_env``, whose env
        is opened once first to read its spaces and wrappers.
        """
        if self.vectorizer == "auto" and task.native_vector_env:
            native = task.make_vector_env(num_envs)
            self._fit_spaces(task, native.single_observation_space, native.single_action_space)
            return GymnasiumVecEnv(native), True
        probe = task.make_env()
        try:
            self._fit_spaces(task, probe.observation_space, probe.action_space)
            own = records_episodes(probe)
        finally:
            probe.close()
        return DummyVecEnv([task.make_env] * num_envs), own

    def _can_adapt(self, observation_space: gym.Space, action_space: gym.Space) -> bool:
        flags = adaptation_needed(
            (self.observation_space, self.action_space), (observation_space, action_space)
        )
        return all(getattr(self, flag) for flag in flags)

    @torch.no_grad()
    def _adapt(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """New policy for the task's spaces, then every same-named, same-shaped parameter carried over.

        The new input layers and head are initialised from the seed of the last :meth:`reset`, so they
        depend only on that seed and the spaces, never on the tasks learned before.
        """
        old = dict(self.model.named_parameters())
        self.observation_space, self.action_space = observation_space, action_space
        self.model = self._build_policy()
        self.reset(self._reset_seed)
        for name, param in self.model.named_parameters():
            if name in old and old[name].shape == param.shape:
                param.copy_(old[name])

    def _vec_env(self, task: Task, seed: int) -> VecEnv:
        """``n_envs`` seeded copies of the task for training (see :meth:`_make_envs`).

        VecMonitor is added only if the envs do not record their own episodes: those that do
        (Atari records raw game scores before reward clipping) keep their ``info["episode"]``,
        which VecMonitor would overwrite with the sum of the (clipped) training rewards.
        """
        vec_env, own = self._make_envs(task, self.n_envs)
        vec_env = vec_env if own else VecMonitor(vec_env)
        vec_env.seed(seed)
        return vec_env

    def learn(self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0) -> LearningCurve:
        """Train the policy on ``task`` for ``steps`` env timesteps, firing hooks at every gradient step.

        Returns:
            Episode returns against timesteps; ``curve.losses`` has every optimizer step's loss.
        """
        steps = positive_int("steps", steps)
        hook = HookList(hooks)
        hook.attach(self)
        curve = LearningCurve(task.id, "timestep", "episode_return")
        vec_env = self._vec_env(task, derive_seed(seed, 1))
        with scoped_global_seed(derive_seed(seed, 2)):
            algo = ALGORITHMS[self.algo](
                self._policy_cls,
                vec_env,
                device=self.device,
                policy_kwargs=dict(self._sb3_policy_kwargs),
                **self.algo_kwargs,
            )
            algo.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default makes a temp folder
            algo.loss_tap = LossTap()
            self._adopt(algo)
            hook.on_task_start(TaskStartContext(self, task, self.model, seed, steps))
            events = GradientStepEvents(self, task, algo.loss_tap, hook, curve)
            handles = [
                algo.policy.optimizer.register_step_pre_hook(events.before_step),
                algo.policy.optimizer.register_step_post_hook(events.after_step),
            ]
            try:
                algo.learn(total_timesteps=steps, callback=EpisodeRecorder(curve))
            finally:
                for handle in handles:
                    handle.remove()
                vec_env.close()
            check_gradient_events(algo, events.step, steps)
        if not curve.values:  # no episode finished within the budget
            curve.append(steps, float("nan"))
        params = dict(self.model.named_parameters())
        hook.on_task_end(TaskEndContext(self, task, params, curve, None))
        return curve

    def _adopt(self, algo: Any) -> None:
        """Put the persistent policy into ``algo`` with a fresh optimizer."""
        throwaway = algo.policy
        algo.policy = self.model
        self.model.optimizer = throwaway.optimizer_class(
            self.model.parameters(), lr=algo.lr_schedule(1), **throwaway.optimizer_kwargs
        )

    def evaluate(self, task: Task, seed: int = 0, curve: LearningCurve | None = None) -> dict[str, float]:
        """Mean and std of the undiscounted return over :attr:`eval_episodes` episodes.

        Where the env reports an episode's success (``info["is_success"]`` at its last step, SB3's
        convention; Meta-World's tasks set it when ``info["success"]`` held at any step), the scores
        also hold ``success_rate``, the fraction of those episodes that succeeded.

        New deterministic episodes, or with ``eval_mode="training"`` the last episodes of the run
        whose ``curve`` (what :meth:`learn` returned) is given: the score belongs to that run, never
        to hidden state (an error if no episode finished within its budget).
        """
        if self.eval_mode == "training":
            return training_score(curve, task.id, self.eval_episodes, self.n_envs)
        native = self.vectorizer == "auto" and task.native_vector_env
        vec_env, own = self._make_envs(task, min(self.n_envs, self.eval_episodes) if native else 1)
        vec_env.seed(derive_seed(seed, 3))
        try:
            if own:  # the env's own (raw) episode returns, not the sum of training rewards
                returns = recorded_returns(self.model, vec_env, self.eval_episodes)
                mean, std = float(np.mean(returns)), float(np.std(returns))
            else:
                successes = SuccessRecorder()
                mean, std = evaluate_policy(
                    self.model,
                    vec_env,
                    n_eval_episodes=self.eval_episodes,
                    deterministic=True,
                    warn=False,
                    callback=successes,
                )
        finally:
            vec_env.close()
        scores = {"return": float(mean), "return_std": float(std)}
        if not own and successes.flags:  # the env reports success (Meta-World): the rate of its episodes
            scores["success_rate"] = successes.rate(self.eval_episodes)
        return scores
