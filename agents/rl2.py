"""RL² (Duan et al. 2016): a recurrent policy that adapts in its hidden state, on sb3-contrib's RecurrentPPO.

A *trial* is several episodes of one task. The policy sees, besides the observation, the previous
action, the previous reward (divided by 10, as Meta-World's ``RNNBasedMetaRLWrapper`` scales it) and
whether the previous step ended an episode; its LSTM state is carried across the episodes of a trial
and reset between trials, so between tasks. Meta-training runs RecurrentPPO on trials of train-split
tasks (:meth:`RL2.meta_train`); adapting to a held-out task is running one trial of it, with no
gradient step: :meth:`RL2.learn` runs the adaptation budget's episodes, :meth:`RL2.evaluate` replays
that trial from the same seed and scores the episodes that follow it.

RL² has no initialization for Leap, Reptile and the others to meta-learn, and its recipe is not the
protocol's PPO agent: its results are recorded under a custom protocol (same tasks, budget, seeds and
metric), which the board does not rank.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.curves import LearningCurve
from agents.hooks import Capabilities, Hook
from agents.parameters import copy_into
from agents.sb3_hooks import EpisodeRecorder
from metaenvs.core import Task
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError, require
from metaenvs.seeding import derive_seed, scoped_global_seed
from metaenvs.validation import positive_int

REWARD_SCALE = 10.0


def trial_observation_space(observation_space: gym.Space, action_space: gym.Space) -> gym.spaces.Box:
    """What RL² observes: a task's flat observation, then the previous action, reward / 10 and done."""
    size = int(np.prod(observation_space.shape)) + int(np.prod(action_space.shape)) + 2
    return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)


class TrialEnv(gym.Env):
    """``episodes`` episodes of one task per Gymnasium episode, as RL² sees them.

    Args:
        draw: Gives the task of a new trial from the env's generator (a fixed task, or a draw from
            the train split).
        episodes: Episodes per trial.
        cache: Most task envs kept open.
    """

    def __init__(self, draw: Callable[[np.random.Generator], Task], episodes: int, cache: int = 8) -> None:
        self.draw, self.episodes, self.cache = draw, positive_int("episodes", episodes), cache
        self._envs: OrderedDict[str, gym.Env] = OrderedDict()
        probe = draw(np.random.default_rng(0)).make_env()
        self.observation_space = trial_observation_space(probe.observation_space, probe.action_space)
        self.action_space = probe.action_space
        probe.close()
        self._env: gym.Env | None = None

    def _open(self, task: Task) -> gym.Env:
        if task.id not in self._envs:
            self._envs[task.id] = task.make_env()
            while len(self._envs) > self.cache:
                self._envs.popitem(last=False)[1].close()
        self._envs.move_to_end(task.id)
        return self._envs[task.id]

    def _obs(self, obs: np.ndarray, action: np.ndarray, reward: float, done: bool) -> np.ndarray:
        extra = [reward / REWARD_SCALE, float(done)]
        return np.concatenate([np.ravel(obs), np.ravel(action), extra]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task = self.draw(self.np_random)
        self._env = self._open(self.task)
        obs, _ = self._env.reset(seed=int(self.np_random.integers(2**31)))
        self._episode, self._return, self._length = 0, 0.0, 0
        return self._obs(obs, np.zeros(self.action_space.shape), 0.0, False), {"task_id": self.task.id}

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float32), self.action_space.low, self.action_space.high)
        obs, reward, terminated, truncated, inner = self._env.step(action)
        self._return, self._length = self._return + float(reward), self._length + 1
        ended = bool(terminated or truncated)
        info: dict[str, Any] = {"task_id": self.task.id}
        if ended:  # an episode of the task ends inside the trial: reported as SB3's Monitor reports one,
            # with the task env's any-step success (Meta-World's rule)
            info["episode"] = {"r": self._return, "l": self._length}
            info["is_success"] = bool(inner.get("is_success", False))
            self._episode, self._return, self._length = self._episode + 1, 0.0, 0
            if self._episode < self.episodes:
                obs, _ = self._env.reset()
        last = ended and self._episode == self.episodes
        return self._obs(obs, action, float(reward), ended), float(reward), False, last, info

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


class RL2:
    """RL² on sb3-contrib's ``RecurrentPPO`` (``MlpLstmPolicy``).

    Args:
        observation_space: A task's observation space (the trial adds action, reward and done).
        action_space: A task's action space.
        episodes_per_trial: Episodes per trial in meta-training (adaptation plus evaluation episodes).
        episode_length: Timesteps per episode of the tasks (Meta-World: 500).
        n_envs: Parallel trials in meta-training.
        policy_kwargs: Passed to ``MlpLstmPolicy`` (``lstm_hidden_size``, ``net_arch``, ...).
        algo_kwargs: Passed to ``RecurrentPPO``.
        eval_episodes: Episodes scored after the adaptation budget.
        seed: Seed of the initial parameters.
        device: Torch device.
    """

    capabilities = Capabilities(first_order=False, differentiable=False, batched=False)
    step_unit = "timesteps"

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        episodes_per_trial: int,
        episode_length: int = 500,
        n_envs: int = 4,
        policy_kwargs: Mapping[str, Any] | None = None,
        algo_kwargs: Mapping[str, Any] | None = None,
        eval_episodes: int = 3,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.algo_cls = require("sb3_contrib", "metaworld").RecurrentPPO
        self.episodes_per_trial = positive_int("episodes_per_trial", episodes_per_trial)
        self.episode_length = positive_int("episode_length", episode_length)
        self.n_envs = positive_int("n_envs", n_envs)
        self.eval_episodes = positive_int("eval_episodes", eval_episodes)
        self.policy_kwargs = dict(policy_kwargs or {"lstm_hidden_size": 128, "net_arch": [128]})
        self.algo_kwargs = dict(algo_kwargs or {"n_steps": 500, "batch_size": 500, "learning_rate": 3e-4})
        self.device = device
        self.task_observation_space, self.action_space = observation_space, action_space
        self._open: tuple[LearningCurve, _Trial] | None = None
        self.observation_space = trial_observation_space(observation_space, action_space)
        self.reset(seed)

    @classmethod
    def for_protocol(cls, dist: Any, seed: int = 0, **overrides: Any) -> RL2:
        """RL² for ``dist``'s protocol: trials of the adaptation budget's episodes plus the scored ones."""
        protocol = dist.protocol
        length = int(protocol.env.get("max_path_length", 500))
        if protocol.budget % length:
            raise InvalidArgumentError(
                f"RL² adapts over whole episodes: the budget {protocol.budget} is not a multiple of the "
                f"episode length {length}."
            )
        eval_episodes = int(protocol.agent.get("eval_episodes", 3))
        env = dist.tasks(protocol.split)[0].make_env()
        try:
            settings = {
                "episodes_per_trial": protocol.budget // length + eval_episodes,
                "episode_length": length,
            }
            settings["eval_episodes"] = eval_episodes
            return cls(env.observation_space, env.action_space, seed=seed, **{**settings, **overrides})
        finally:
            env.close()

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "type": "rl2",
            "algo": "recurrent_ppo",
            "episodes_per_trial": self.episodes_per_trial,
            "episode_length": self.episode_length,
            "n_envs": self.n_envs,
            "policy": "MlpLstmPolicy",
            "policy_kwargs": self.policy_kwargs,
            "algo_kwargs": self.algo_kwargs,
            "eval_episodes": self.eval_episodes,
        }

    def reset(self, seed: int) -> None:
        """A fresh recurrent policy, its weights drawn from ``seed``."""
        policy_cls = self.algo_cls.policy_aliases["MlpLstmPolicy"]
        with scoped_global_seed(derive_seed(seed, "rl2")):
            self.model = policy_cls(
                self.observation_space, self.action_space, lambda _: 3e-4, **self.policy_kwargs
            )
        self.model.to(self.device)

    def set_parameters(self, tensors: Mapping[str, torch.Tensor]) -> None:
        copy_into(self.model, tensors)

    def meta_train(self, dist: Any, timesteps: int, seed: int = 0, split: str = "train") -> LearningCurve:
        """RecurrentPPO on trials of ``split`` tasks for ``timesteps`` env steps.

        Returns:
            Every trial episode's return (and success) against meta-training timesteps.
        """
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.vec_env import DummyVecEnv

        positive_int("timesteps", timesteps)
        if dist.protocol.split == split:
            raise InvalidArgumentError(f"RL² meta-trains on the train split, not on the held-out {split!r}.")
        draw = lambda rng: dist.sample(rng, split, 1)[0]  # noqa: E731
        vec = DummyVecEnv([lambda: TrialEnv(draw, self.episodes_per_trial)] * self.n_envs)
        vec.seed(derive_seed(seed, 1) % 2**31)
        curve = LearningCurve(f"{dist.id}:{split}", "timestep", "episode_return")
        with scoped_global_seed(derive_seed(seed, 2)):
            algo = self.algo_cls("MlpLstmPolicy", vec, policy_kwargs=self.policy_kwargs, device=self.device,
                                 **self.algo_kwargs)  # fmt: skip
            algo.set_logger(Logger(folder=None, output_formats=[]))
            throwaway, algo.policy = algo.policy, self.model  # train the persistent policy, fresh optimizer
            self.model.optimizer = throwaway.optimizer_class(
                self.model.parameters(), lr=algo.lr_schedule(1), **throwaway.optimizer_kwargs
            )
            algo.learn(total_timesteps=timesteps, callback=EpisodeRecorder(curve))
        vec.close()
        return curve

    def _open_trial(self, task: Task, adapt_steps: int, seed: int) -> _Trial:
        if adapt_steps % self.episode_length:
            raise InvalidArgumentError(
                f"steps must be whole episodes of {self.episode_length}, got {adapt_steps}."
            )
        adapt = adapt_steps // self.episode_length
        return _Trial(self.model, task, adapt, adapt + self.eval_episodes, seed)

    def learn(self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0) -> LearningCurve:
        """One trial of ``task`` for ``steps`` timesteps: the hidden state adapts, no gradient step."""
        if hooks:
            raise IncompatibleAgentError(
                "RL² adapts in its hidden state and takes no gradient steps on a task: hooks (Leap, Reptile, "
                "...) have nothing to see; meta-train it with RL2.meta_train."
            )
        trial = self._open_trial(task, positive_int("steps", steps), seed)
        curve = LearningCurve(task.id, "timestep", "episode_return")
        for episode in trial.adapt():
            curve.append(episode["step"], episode["r"])
            curve.successes.append(episode["success"])
        if self._open is not None:
            self._open[1].close()
        self._open = (curve, trial)  # evaluate(curve=curve) goes on with this very trial
        return curve

    def evaluate(self, task: Task, seed: int = 0, curve: LearningCurve | None = None) -> dict[str, float]:
        """Score the episodes that follow the adaptation trial of ``curve`` (what :meth:`learn` returned).

        The trial goes on where :meth:`learn` left it; for a curve of an earlier run, the trial is
        replayed from ``seed`` first (the same bits: every draw comes from the seed).
        """
        if curve is None or curve.task_id != task.id or not curve.steps:
            raise InvalidArgumentError(
                f"RL² scores the episodes after an adaptation trial: pass the curve learn() returned for "
                f"task {task.id!r}, as evaluate(task, seed, curve=curve)."
            )
        if self._open is not None and self._open[0] is curve:
            trial, self._open = self._open[1], None
        else:
            trial = self._open_trial(task, int(curve.steps[-1]), seed)
            trial.adapt()
        try:
            episodes = trial.score()
        finally:
            trial.close()
        returns = [e["r"] for e in episodes]
        return {
            "success_rate": float(np.mean([e["success"] for e in episodes])),
            "return": float(np.mean(returns)),
            "return_std": float(np.std(returns)),
        }


class _Trial:
    """One trial of one task: ``adapt`` episodes sampling actions, then the rest on the policy's mean."""

    def __init__(self, model: Any, task: Task, adapt: int, episodes: int, seed: int) -> None:
        self.model, self.n_adapt, self.n_episodes, self.seed = model, adapt, episodes, seed
        self.env = TrialEnv(lambda _rng: task, episodes, cache=1)
        self.obs, _ = self.env.reset(seed=derive_seed(seed, 3) % 2**31)
        self.state, self.start, self.t = None, np.ones((1,), dtype=bool), 0

    def _run(self, episodes: int, deterministic: bool) -> list[dict[str, float]]:
        done: list[dict[str, float]] = []
        with torch.no_grad():
            while len(done) < episodes:
                action, self.state = self.model.predict(self.obs[None], self.state, self.start, deterministic)
                self.obs, _, _, _, info = self.env.step(action[0])
                self.start, self.t = np.zeros((1,), dtype=bool), self.t + 1
                if "episode" in info:
                    done.append(
                        {
                            "r": info["episode"]["r"],
                            "success": float(info["is_success"]),
                            "step": float(self.t),
                        }
                    )
        return done

    def adapt(self) -> list[dict[str, float]]:
        """The adaptation episodes (actions sampled from the seed)."""
        with scoped_global_seed(derive_seed(self.seed, 4)):
            return self._run(self.n_adapt, deterministic=False)

    def score(self) -> list[dict[str, float]]:
        """The scored episodes after adaptation (the policy's mean action: no draw)."""
        return self._run(self.n_episodes - self.n_adapt, deterministic=True)

    def close(self) -> None:
        self.env.close()
