"""Evaluation protocols: the fixed recipe a result is measured under, as hashed data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from metaenvs.errors import InvalidArgumentError

BUDGET_UNITS = ("inner_steps", "timesteps")


CUSTOM = "custom"
"""Name of a protocol derived with :meth:`Protocol.customised`: never ranked as official."""
NONSTANDARD = "-nonstandard"
"""Suffix of the name of a protocol whose env departs from its family's standard."""


EXECUTION_KEYS = frozenset({"batched", "vectorizer", "device", "channels_last", "compile"})
"""Agent settings that change how a run executes, not what it computes: not part of a recipe."""


def recipe_differences(expected: Mapping[str, Any], used: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every field where an agent's settings depart from a protocol's recipe, one line each.

    Args:
        expected: The recipe (the ``hyperparameters()`` of the agent the protocol prescribes).
        used: The ``hyperparameters()`` of the agent that ran.
        prefix: Dotted path of the mapping being compared (for nested settings).

    Returns:
        Lines such as ``"lr: the protocol's recipe has 0.02, the run used 0.05"``; empty if they agree.
    """
    lines = []
    for key in sorted(set(expected) | set(used), key=str):
        if not prefix and key in EXECUTION_KEYS:
            continue
        where = f"{prefix}{key}"
        if key not in used:
            lines.append(f"{where}: the protocol's recipe has {expected[key]!r}, the run did not record it")
        elif key not in expected:
            lines.append(f"{where}: the run used {used[key]!r}, which the protocol's recipe does not have")
        elif isinstance(expected[key], Mapping) and isinstance(used[key], Mapping):
            lines += recipe_differences(expected[key], used[key], prefix=f"{where}.")
        elif _plain(expected[key]) != _plain(used[key]):
            lines.append(f"{where}: the protocol's recipe has {expected[key]!r}, the run used {used[key]!r}")
    return lines


def _plain(value: Any) -> Any:
    """JSON form of a setting (tuples as lists), so a recorded recipe compares equal to a live one."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


VERIFY_TOLERANCES: dict[str, dict[str, float]] = {
    # When a re-run (``metaenvs board verify``) reproduces an entry, by the protocol's metric: every run's
    # final score within ``rtol`` / ``atol`` of the submitted one (math.isclose), except at most
    # ``unstable_fraction`` of the runs, and the IQM of the re-run within ``iqm_rtol`` of the submitted
    # IQM. Measured (benchmarks/verify_tolerance.py, benchmarks/results/verify_tolerance/): re-runs of
    # the shipped entries with 1 or 2 torch threads and with this CPU's or ATen's portable kernels.
    # - mse (Sinusoid): Reptile, Leap, scratch move by at most 1.9e-4 (2.1e-4 relative), FOMAML by 6.3e-3
    #   (2.4e-3); from the MAML initialization 4% of the runs are chaotic (they move by up to 27, i.e.
    #   diverge differently) while its IQM moves by 1.6e-3 relative. Hence 1e-2 per run, 5% of the runs
    #   allowed outside, IQM within 1e-2.
    # - nrmse (Jester-1): every run within 1.2e-7 (1.6e-7 relative): the strict default fits, 10x over.
    "mse": {"rtol": 1e-2, "atol": 1e-2, "unstable_fraction": 0.05, "iqm_rtol": 1e-2},
}
DEFAULT_VERIFY_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6, "unstable_fraction": 0.0, "iqm_rtol": 1e-5}
"""For every other metric: strict, so a verification fails rather than passes on a tolerance nobody
measured (RL returns: no RL entry is on the board yet)."""


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

    @property
    def verify_tolerance(self) -> dict[str, float]:
        """``{"rtol", "atol"}`` within which a re-run reproduces a run (``metaenvs board verify``), by
        the protocol's metric (:data:`VERIFY_TOLERANCES`). Not hashed: it judges re-runs, it does not
        change what a run measures."""
        return dict(VERIFY_TOLERANCES.get(self.metric, DEFAULT_VERIFY_TOLERANCE))

    @property
    def is_custom(self) -> bool:
        """Whether this protocol was derived with :meth:`customised` (the board never ranks it)."""
        return self.name.startswith(CUSTOM)

    def customised(self, **changes: Any) -> Protocol:
        """A copy with changed fields (budget, seeds, split, agent recipe, ...), named ``custom`` so that
        it never passes for the official recipe; a protocol marked ``-nonstandard`` (an env departing
        from a standard) stays marked. This is the only way to derive a protocol from another.

        Changes equal to the protocol's own values are no changes: ``customised(split="test")`` of a
        protocol whose split is ``test`` returns the protocol itself, still official.
        """
        current = self.to_dict()
        unknown = sorted(set(changes) - set(current) - {"env"})
        if unknown:
            raise InvalidArgumentError(
                f"Protocol has no field(s) {unknown}; the fields are {sorted(current)}."
            )
        if "name" in changes:
            raise InvalidArgumentError("customised() names the protocol itself ('custom'); do not pass name.")
        normalised = Protocol.from_dict({**current, **changes}).to_dict()
        if normalised == current:
            return self
        marked = self.name.endswith(NONSTANDARD)
        return Protocol.from_dict({**normalised, "name": f"{CUSTOM}{NONSTANDARD}" if marked else CUSTOM})
