"""Atari games as tasks: fixed, listed splits of ALE ROM ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium.vector import VectorEnv

from metaenvs.atari.envs import ATARI_100K, MACHADO_2018, AtariConfig, make_atari_env
from metaenvs.atari.games import has_reference, human_normalized
from metaenvs.atari.vector import make_atari_vector_env
from metaenvs.core import RLTaskDistribution, Task
from metaenvs.errors import InvalidArgumentError, require
from metaenvs.protocol import NONSTANDARD, Protocol
from metaenvs.validation import one_of, positive_int

TIERS = {MACHADO_2018: 10_000_000, ATARI_100K: 400_000}
"""The official protocol tiers and their budgets per game in emulator frames (see :class:`AtariGames`)."""


class AtariGames(RLTaskDistribution):
    """Each task is one Atari game; the splits are lists of ALE ROM ids.

    Register your own game lists with::

        metaenvs.register("Mine/Atari-v0", "metaenvs.atari:AtariGames",
                          kwargs={"train": ["pong", "freeway"], "test": ["breakout"]})

    Args:
        train: Games for meta-training (may be empty for an evaluation-only list).
        test: Held-out games.
        val: Validation games.
        config: Overrides of :class:`~metaenvs.atari.envs.AtariConfig` (the Machado et al. 2018
            protocol by default).
        non_standard: Must be true when ``config`` departs from Machado et al.; results then
            carry a non-standard protocol name and never mix with standard ones.
        tier: The official protocol: ``"machado2018"`` (Machado et al. 2018: 10M frames per game,
            SB3's A2C with Leap's recipe) or ``"atari100k"`` (100k agent steps = 400k frames per game,
            the sample-efficiency budget of Kaiser et al. 2019, under Machado's settings otherwise,
            learned by the native A2C). Atari-100k exists because it is what a CPU or a small GPU can
            evaluate: 10M frames per game and seed take days on a CPU, 400k take about two minutes.
        frames: Protocol budget per game, in emulator frames (default: the tier's); another value
            than the tier's makes the protocol custom-budgeted but keeps its name (set by the family's
            registration, e.g. for tests).
        seed: Unused (the lists are fixed); kept for the uniform ``make`` signature.
    """

    seed_decides_splits = False
    native_vector_env = True
    held_out_tasks_are_a_sample = False  # the listed games are the benchmark
    default_model: ClassVar = {"type": "mnih2013"}

    def __init__(
        self,
        test: Sequence[str],
        train: Sequence[str] = (),
        val: Sequence[str] = (),
        config: Mapping[str, Any] | None = None,
        non_standard: bool = False,
        frames: int | None = None,
        seed: int = 0,
        tier: str = MACHADO_2018,
    ) -> None:
        super().__init__(seed)
        known = set(require("ale_py", "atari").roms.get_all_rom_ids())
        self.lists = {"train": list(train), "val": list(val), "test": list(test)}
        for split, games in self.lists.items():
            unknown = [g for g in games if g not in known]
            if unknown:
                raise InvalidArgumentError(
                    f"{split} games {unknown} are not ALE ROM ids; use snake_case ids such as "
                    "'space_invaders' (ale_py.roms.get_all_rom_ids() lists them)."
                )
        overlap = (set(self.lists["train"]) | set(self.lists["val"])) & set(self.lists["test"])
        if overlap:
            raise InvalidArgumentError(f"Games {sorted(overlap)} are both held out and used for training.")
        self.config = AtariConfig.from_dict(dict(config or {}))
        self.non_standard = bool(non_standard)
        deviations = self.config.deviations()
        if deviations and not self.non_standard:
            raise InvalidArgumentError(
                f"Atari config departs from Machado et al. (2018) in {deviations} (value, standard); pass "
                "non_standard=True to use it, and its results will be marked non-standard."
            )
        self.tier = one_of("tier", tier, tuple(TIERS))
        self.frames = positive_int("frames", TIERS[self.tier] if frames is None else frames)

    def _split_sizes(self) -> dict[str, int | None]:
        return {split: len(games) for split, games in self.lists.items() if games}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        game = self.lists[split][index]
        return game, {"game": game}

    def make_env(self, task: Task, render_mode: str | None = None) -> gym.Env:
        task = self.check_task(task)
        return make_atari_env(task.params["game"], self.config, render_mode=render_mode)

    @property
    def frames_per_step(self) -> int:  # type: ignore[override]
        """Emulator frames per agent step: the config's frame skip."""
        return self.config.frame_skip

    def make_vector_env(self, task: Task, num_envs: int, asynchronous: bool = False) -> VectorEnv:
        """``num_envs`` copies of the game in ale-py's native, threaded vector env (``asynchronous`` is moot).

        Same observations, raw episode scores and sticky-action draws as :meth:`make_env`
        for the same seed; sub-environments reset in the step they end (see
        :mod:`metaenvs.atari.vector`).
        """
        task = self.check_task(task)
        return make_atari_vector_env(task.params["game"], self.config, num_envs)

    def check_protocol(self, protocol: Protocol) -> None:
        """Refuse an env config that departs from Machado et al. unless the protocol says non-standard."""
        config = AtariConfig.from_dict(dict(protocol.env))
        deviations = config.deviations()
        if deviations and not protocol.name.endswith(NONSTANDARD):
            raise InvalidArgumentError(
                f"Protocol {protocol.id} is named standard but its Atari config departs from Machado et al. "
                f"(2018) in {deviations} (value, standard). Name it '{self.tier}{NONSTANDARD}' to "
                "evaluate under it; standard and non-standard results are never compared."
            )

    def normalize_score(self, task: Task, score: float) -> float | None:
        """Human-normalised score ``(score - random) / (human - random)``; ``None`` without a reference."""
        game = self.check_task(task).params["game"]
        return human_normalized(game, score) if has_reference(game) else None

    def default_protocol(self) -> Protocol:
        recipe = {  # Leap's Atari actor-critic: Mnih et al. (2013) encoder, RMSprop, A2C
            "algo": "a2c",
            "n_envs": 16,
            "policy": "CnnPolicy",
            "policy_kwargs": {"features_extractor": "mnih2013"},
            "algo_kwargs": {"learning_rate": 1e-4, "rms_prop_eps": 1e-4, "ent_coef": 0.01, "gamma": 0.99},
            "eval_episodes": 100,  # the score: mean raw return of the last 100 training episodes
            "eval_mode": "training",  # Machado et al. (2018), sec. 5
            "adapt_action_head": True,  # games differ in their minimal action sets
        }
        agent_type = "actor_critic" if self.tier == MACHADO_2018 else "native_actor_critic"
        return Protocol(
            dist_id=self.id,
            name=f"{self.tier}{NONSTANDARD}" if self.non_standard else self.tier,
            budget=self.frames // self.config.frame_skip,
            budget_unit="timesteps",
            seeds=(0, 1, 2),
            metric="return",
            higher_is_better=True,
            normalisation="human",
            agent={"type": agent_type, **recipe},
            env=self.config.to_dict(),
        )
