"""Evaluation protocols: the fixed recipe a result is measured under, as hashed data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from metaenvs.errors import InvalidArgumentError

BUDGET_UNITS = ("inner_steps", "timesteps")


NONSTANDARD = "-nonstandard"
"""Suffix of the name of a protocol whose env departs from its family's standard."""


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every hash in the suite is taken of."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_json(data: Any) -> str:
    """sha256 (hex) of :func:`canonical_json` of ``data``."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


@dataclass(frozen=True)
class Protocol:
    """The official evaluation recipe of a task distribution.

    Attributes:
        dist_id: The distribution the protocol belongs to.
        name: Protocol name, unique within the distribution (``"default"``).
        split: Which split is evaluated (normally ``"test"``, the held-out tasks).
        budget: How long the agent learns each task, in ``budget_unit``.
        budget_unit: ``"inner_steps"`` (optimizer steps) or ``"timesteps"`` (env steps).
        seeds: Agent seeds every task is learned with.
        metric: Name of the final score (``"mse"``, ``"accuracy"``, ``"return"``, ...).
        higher_is_better: Direction of ``metric``.
        agent: The adaptation recipe (optimizer, learning rate, batch size, algorithm).
        normalisation: Name of a score normalisation, or ``None``.
        min_seeds: Fewest seeds a submitted result may carry.
        env: How tasks become envs, where a family has a standard for it (Atari's Machado et
            al. 2018 settings); left out of the JSON (and the hash) when empty.
    """

    dist_id: str
    budget: int
    budget_unit: str
    seeds: tuple[int, ...]
    metric: str
    higher_is_better: bool
    agent: Mapping[str, Any] = field(default_factory=dict)
    name: str = "default"
    split: str = "test"
    normalisation: str | None = None
    min_seeds: int = 3
    env: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget_unit not in BUDGET_UNITS:
            raise InvalidArgumentError(f"budget_unit {self.budget_unit!r} is not one of {BUDGET_UNITS}.")
        if not isinstance(self.budget, int) or self.budget <= 0:
            raise InvalidArgumentError(f"Protocol budget must be a positive int, got {self.budget!r}.")
        if not self.seeds:
            raise InvalidArgumentError("A protocol needs at least one seed.")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "agent", dict(self.agent))
        object.__setattr__(self, "env", dict(self.env))

    @property
    def id(self) -> str:
        """``dist_id#name``: the protocol's stable name."""
        return f"{self.dist_id}#{self.name}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["agent"] = dict(self.agent)
        if not self.env:
            del data["env"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        return cls(**{**data, "seeds": tuple(data["seeds"])})

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the protocol: results name what they measured."""
        return sha256_json(self.to_dict())

    def replace(self, **changes: Any) -> Protocol:
        """A copy with some fields changed (its hash changes too)."""
        return Protocol.from_dict({**self.to_dict(), **changes})

    def customised(self, **changes: Any) -> Protocol:
        """A copy with changed budget, seeds or split, named ``custom`` so that it never passes for the
        official recipe; a protocol marked ``-nonstandard`` (an env departing from a standard) stays
        marked."""
        marked = self.name.endswith(NONSTANDARD)
        return self.replace(**changes, name=f"custom{NONSTANDARD}" if marked else "custom")
