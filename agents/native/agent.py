"""An actor-critic that owns its training loop: A2C and PPO in plain PyTorch, hooks fired by the loop.

:class:`NativeActorCritic` offers what :class:`~agents.ActorCritic` (SB3) offers, with the same
recipe keys (SB3's ``algo_kwargs`` names and defaults) and the same parameter names, so a protocol
switches between them by its agent ``type`` and an initialization serves both. It differs in how it
runs: its loops (:mod:`agents.native.loops`) fire ``on_task_start`` / ``on_inner_step`` (after
backward and clipping, with the loss back-propagated) / ``on_step_end`` / ``on_task_end`` themselves,
with nothing of anyone's internals patched; every random draw comes from a ``torch.Generator``
seeded by the run; vector envs stay open between calls (no ROM reloads); and ``learn_steps`` pauses
after every inner step, so CTS advances a meta-batch in lockstep in one thread.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.curves import LearningCurve, training_score
from agents.hooks import Capabilities, Hook, HookList, TaskEndContext, TaskStartContext, drain
from agents.native.envs import VECTORIZERS, EnvCache, episode_ends
from agents.native.loops import LOOPS, Run
from agents.native.networks import ActorCriticNet, initialise, network_kwargs
from agents.parameters import copy_into
from metaenvs.core import Task
from metaenvs.errors import IncompatibleAgentError, InvalidArgumentError
from metaenvs.seeding import derive_seed
from metaenvs.spaces import adaptation_needed
from metaenvs.validation import one_of, positive_int

DEFAULTS = {  # SB3 2.x's defaults, by its names
    "a2c": {
        "learning_rate": 7e-4, "n_steps": 5, "gamma": 0.99, "gae_lambda": 1.0, "ent_coef": 0.0,
        "vf_coef": 0.5, "max_grad_norm": 0.5, "rms_prop_eps": 1e-5, "use_rms_prop": True,
        "normalize_advantage": False,
    },
    "ppo": {
        "learning_rate": 3e-4, "n_steps": 2048, "batch_size": 64, "n_epochs": 10, "gamma": 0.99,
        "gae_lambda": 0.95, "clip_range": 0.2, "clip_range_vf": None, "normalize_advantage": True,
        "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "target_kl": None,
    },
}  # fmt: skip
EVAL_MODES = ("rollouts", "training")


class NativeActorCritic:
    """A2C or PPO in plain PyTorch that learns one RL task from the current :attr:`model`.

    Args:
        observation_space: Observation space shared by the distribution's tasks (a Box).
        action_space: Action space (Discrete or 1-d Box).
        algo: ``"a2c"`` or ``"ppo"``.
        n_envs: Parallel envs per task.
        policy: ``"MlpPolicy"`` or ``"CnnPolicy"`` (SB3's names and default architectures).
        policy_kwargs: ``features_extractor`` (``"mnih2013"``), ``net_arch``, ``activation_fn``,
            ``log_std_init``.
        algo_kwargs: SB3's names (``learning_rate``, ``n_steps``, ``ent_coef``, ...); unknown keys
            are refused. Defaults are SB3's (:data:`DEFAULTS`).
        eval_episodes: Episodes of :meth:`evaluate`.
        eval_mode: ``"rollouts"`` (new deterministic episodes) or ``"training"`` (the last episodes
            of the run whose curve is passed; Machado et al. 2018).
        adapt_action_head: Let tasks differ in their number of discrete actions (Atari games): a new
            action head per action count, seeded by the last :meth:`reset`; meta-learn
            :attr:`shared_parameters`.
        vectorizer: ``"auto"`` (the task's native vector env where it has one, else sync),
            ``"sync"`` or ``"async"`` (Gymnasium's vector envs).
        seed: Seed of the initial parameters.
        device: Torch device (``"cpu"``, ``"cuda"``).
        channels_last: Image batches and convolutions in channels-last memory format.
        compile: Run the network's forward pass through ``torch.compile``.
    """

    capabilities = Capabilities(first_order=True, differentiable=False, batched=False, stepwise=True)
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
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        self.algo = one_of("algo", algo, tuple(LOOPS))
        self.n_envs = positive_int("n_envs", n_envs)
        self.policy_alias = policy
        self.policy_kwargs = dict(policy_kwargs or {})
        self._net_kwargs = network_kwargs(self.policy_kwargs)
        self.algo_kwargs = dict(algo_kwargs or {})
        unknown = sorted(set(self.algo_kwargs) - set(DEFAULTS[self.algo]))
        if unknown:
            raise InvalidArgumentError(
                f"Unknown algo_kwargs {unknown} for the native {self.algo}; "
                f"known: {sorted(DEFAULTS[self.algo])}."
            )
        self.settings = {**DEFAULTS[self.algo], **self.algo_kwargs}
        for key in ("n_steps", *(("batch_size", "n_epochs") if self.algo == "ppo" else ())):
            positive_int(f"algo_kwargs[{key!r}]", self.settings[key])
        self.eval_episodes = positive_int("eval_episodes", eval_episodes)
        self.eval_mode = one_of("eval_mode", eval_mode, EVAL_MODES)
        self.adapt_action_head = bool(adapt_action_head)
        self.adapt_input_layer = False
        self.vectorizer = one_of("vectorizer", vectorizer, VECTORIZERS)
        self.device = torch.device(device)
        self.channels_last, self.compile = bool(channels_last), bool(compile)
        self.observation_space, self.action_space = observation_space, action_space
        self._envs = EnvCache()
        self.model: ActorCriticNet = self._build()
        self.reset(seed)

    @classmethod
    def for_distribution(cls, dist: Any, seed: int = 0, **overrides: Any) -> NativeActorCritic:
        """Build the agent a distribution's protocol prescribes (spaces read from one test task)."""
        recipe = {k: v for k, v in dist.protocol.agent.items() if k != "type"}
        env = dist.tasks(dist.protocol.split)[0].make_env()
        try:
            return cls(env.observation_space, env.action_space, seed=seed, **{**recipe, **overrides})
        finally:
            env.close()

    def _build(self) -> ActorCriticNet:
        with torch.random.fork_rng(devices=[]):  # torch's default init draws globally; reset() overwrites it
            net = ActorCriticNet(
                self.observation_space, self.action_space, self.policy_alias, **self._net_kwargs
            )
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self._compiled = torch.compile(net) if self.compile else None
        return net

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy head and values of a batch of raw observations (compiled / channels-last if asked)."""
        if self.channels_last and obs.dim() == 4:
            obs = obs.contiguous(memory_format=torch.channels_last)
        return (self.model if self._compiled is None else self._compiled)(obs)

    @property
    def live_parameters(self) -> dict[str, torch.Tensor]:
        return dict(self.model.named_parameters())

    @property
    def action_bounds(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if isinstance(self.action_space, gym.spaces.Box):
            return self.action_space.low, self.action_space.high
        return None, None

    @property
    def shared_parameters(self) -> list[str] | None:
        """Prefixes of the parameters every task shares: the encoder when the action head adapts."""
        return ["features_extractor"] if self.adapt_action_head else None

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "type": "native_actor_critic",
            "algo": self.algo,
            "n_envs": self.n_envs,
            "policy": self.policy_alias,
            "policy_kwargs": self.policy_kwargs,
            "algo_kwargs": self.algo_kwargs,
            "eval_episodes": self.eval_episodes,
            "eval_mode": self.eval_mode,
            "adapt_action_head": self.adapt_action_head,
            "vectorizer": self.vectorizer,
            "device": str(self.device),
            "channels_last": self.channels_last,
            "compile": self.compile,
        }

    def set_parameters(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Write an initialization (all parameters or a named subset) into the network.

        With ``adapt_action_head``, an action head of another size is the task's own and is skipped.

        Raises:
            IncompatibleAgentError: If a tensor's shape differs from the parameter's, naming both.
        """
        own = dict(self.model.named_parameters())
        kept = {}
        for name, value in tensors.items():
            if name in own and tuple(own[name].shape) != tuple(value.shape):
                if self.adapt_action_head and name.startswith("action_net."):
                    continue
                raise IncompatibleAgentError(
                    f"The initialization's {name} has shape {tuple(value.shape)}, this agent's "
                    f"{tuple(own[name].shape)} (observation space {self.observation_space}, action space "
                    f"{self.action_space}); meta-train an initialization for these spaces."
                )
            kept[name] = value
        copy_into(self.model, kept)

    @torch.no_grad()
    def reset(self, seed: int) -> None:
        """Re-initialise the network from ``seed`` (SB3's scheme: orthogonal, gains sqrt 2 / 0.01 / 1)."""
        self._reset_seed = int(seed)
        initialise(self.model, self._reset_seed)

    @torch.no_grad()
    def _fit_spaces(self, task: Task, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Give the network a new action head for another action count, or refuse the task."""
        if observation_space == self.observation_space and action_space == self.action_space:
            return
        try:
            flags = adaptation_needed(
                (self.observation_space, self.action_space), (observation_space, action_space),
                ("built", task.id),
            )  # fmt: skip
        except IncompatibleAgentError as exc:
            raise IncompatibleAgentError(f"{exc} This agent cannot learn task {task.id!r}.") from exc
        if set(flags) - {"adapt_action_head"} or not self.adapt_action_head:
            raise IncompatibleAgentError(
                f"Task {task.id!r} has spaces {observation_space} / {action_space}, but this agent was built "
                f"for {self.observation_space} / {self.action_space}; it needs "
                + " and ".join(f"{flag}=True" for flag in flags)
                + " (the native actor-critic adapts only its action head)."
            )
        old = dict(self.model.named_parameters())
        self.observation_space, self.action_space = observation_space, action_space
        self.model = self._build()
        self.reset(self._reset_seed)
        for name, param in self.model.named_parameters():
            if name in old and old[name].shape == param.shape:
                param.copy_(old[name])

    def _optimizer(self) -> torch.optim.Optimizer:
        s, params = self.settings, self.model.parameters()
        if self.algo == "a2c" and s["use_rms_prop"]:
            return torch.optim.RMSprop(
                params, lr=s["learning_rate"], alpha=0.99, eps=s["rms_prop_eps"], weight_decay=0
            )
        return torch.optim.Adam(params, lr=s["learning_rate"], eps=1e-5)

    def learn(self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0) -> LearningCurve:
        """Train on ``task`` for ``steps`` env timesteps (SB3's count), firing hooks at every gradient step.

        Returns:
            Raw episode returns against timesteps; ``curve.losses`` has every optimizer step's loss.
        """
        return drain(self.learn_steps(task, steps, hooks, seed))

    def learn_steps(
        self, task: Task, steps: int, hooks: Sequence[Hook] = (), seed: int = 0
    ) -> Generator[int, None, LearningCurve]:
        """:meth:`learn` as a generator that pauses after every optimizer step (yielding its index)."""
        steps = positive_int("steps", steps)
        hook = HookList(hooks)
        hook.attach(self)
        env = self._envs.get(task, self.n_envs, self.vectorizer)
        self._fit_spaces(task, env.single_observation_space, env.single_action_space)
        curve = LearningCurve(task.id, "timestep", "episode_return")
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(seed, 2))
        obs, _ = env.reset(seed=derive_seed(seed, 1) % 2**31)
        hook.on_task_start(TaskStartContext(self, task, self.model, seed, steps))
        run = Run(self, task, env, hook, curve, self._optimizer(), generator, steps, self.settings)
        self.model.train()
        yield from LOOPS[self.algo](run, torch.as_tensor(obs, device=self.device))
        if not curve.values:  # no episode finished within the budget
            curve.append(steps, float("nan"))
        hook.on_task_end(TaskEndContext(self, task, dict(self.model.named_parameters()), curve, None))
        return curve

    @torch.no_grad()
    def evaluate(self, task: Task, seed: int = 0, curve: LearningCurve | None = None) -> dict[str, float]:
        """Mean and std of the return over :attr:`eval_episodes` episodes (and ``success_rate`` where the
        env reports ``info["is_success"]``).

        New deterministic episodes (sub-environment ``i`` of ``n`` contributes its first
        ``(episodes + i) // n``, SB3's quota), or with ``eval_mode="training"`` the last episodes of
        the run whose ``curve`` is given: a score always belongs to one run, never to hidden state.
        """
        if self.eval_mode == "training":
            return training_score(curve, task.id, self.eval_episodes, self.n_envs)
        n = min(self.n_envs, self.eval_episodes)
        env = self._envs.get(task, n, self.vectorizer)
        self._fit_spaces(task, env.single_observation_space, env.single_action_space)
        quota = [(self.eval_episodes + i) // n for i in range(n)]
        returns: list[list[float]] = [[] for _ in range(n)]
        successes: list[list[float]] = [[] for _ in range(n)]
        obs, _ = env.reset(seed=derive_seed(seed, 3) % 2**31)
        low, high = self.action_bounds
        self.model.eval()
        while any(len(r) < q for r, q in zip(returns, quota, strict=True)):
            head, _ = self.forward(torch.as_tensor(obs, device=self.device))
            actions = self.model.sample(head, None, deterministic=True).cpu().numpy()
            if low is not None:
                actions = np.clip(actions, low, high)
            obs, _, terminated, truncated, infos = env.step(actions)
            for end in episode_ends(infos, np.logical_or(terminated, truncated)):
                if len(returns[end.env]) < quota[end.env]:
                    returns[end.env].append(end.ret)
                    if end.success is not None:
                        successes[end.env].append(end.success)
        flat = [r for per_env in returns for r in per_env]
        scores = {"return": float(np.mean(flat)), "return_std": float(np.std(flat))}
        flags = [s for per_env in successes for s in per_env]
        if flags:
            if len(flags) < len(flat):
                raise InvalidArgumentError(
                    f"The env reported success for {len(flags)} of {len(flat)} evaluation episodes; an env "
                    "that reports info['is_success'] must report it at the end of every episode."
                )
            scores["success_rate"] = float(np.mean(flags))
        return scores

    def close(self) -> None:
        """Close the cached vector envs."""
        self._envs.close()

    def __getstate__(self) -> dict[str, Any]:  # copies (replicas, Ray workers) open their own envs
        state = dict(self.__dict__)
        state["_envs"], state["_compiled"] = EnvCache(), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._compiled = torch.compile(self.model) if self.compile else None

    def __deepcopy__(self, memo: dict) -> NativeActorCritic:
        import copy

        clone = object.__new__(type(self))
        state = self.__getstate__()
        memo[id(self)] = clone
        clone.__setstate__({k: copy.deepcopy(v, memo) for k, v in state.items()})
        return clone
