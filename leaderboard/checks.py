"""The checks of a result against the installed suite that concern what was run and what it scored:
the agent's recipe, the coverage of the held-out tasks and seeds, and every score's type and range.

Each check returns one line per problem (records are named by index, a few at a time), so that a
refusal lists every problem at once.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metaenvs.errors import InvalidArgumentError, MetaEnvsError
from metaenvs.metrics import SCORE_RANGES, curve_auc, curve_auc_xy, score_range
from metaenvs.protocol import recipe_differences

REL_TOL = 1e-9
SHOWN = 5


def listed(items: list[Any]) -> str:
    """The first few of ``items`` and how many more there are."""
    shown = ", ".join(str(i) for i in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


@dataclass(frozen=True)
class Reference:
    """What the installed suite prescribes for a distribution's official protocol.

    Attributes:
        recipe: ``agents.make_agent(dist, seed=0).hyperparameters()``: the agent settings a result's
            ``agent`` record must match.
        params: ``name -> (shape, dtype)`` of the prescribed model's parameters, which an
            initialization must fit (``copy_into`` accepts any non-empty subset of them).
    """

    recipe: dict[str, Any]
    params: dict[str, tuple[tuple[int, ...], str]]


_REFERENCES: dict[tuple[str, str, str], Reference] = {}


def reference(dist: Any) -> Reference:
    """The :class:`Reference` of ``dist``'s official protocol (built once per spec and protocol)."""
    key = (dist.id, dist.spec.to_json(), dist.protocol.hash)
    if key not in _REFERENCES:
        from agents import make_agent

        agent = make_agent(dist, seed=0)
        params = {
            name: (tuple(int(n) for n in p.shape), str(p.dtype).removeprefix("torch."))
            for name, p in agent.model.named_parameters()
        }
        recipe = json.loads(json.dumps(agent.hyperparameters(), default=str))
        _REFERENCES[key] = Reference(recipe, params)
    return _REFERENCES[key]


def is_baseline(data: Mapping[str, Any]) -> bool:
    """Whether a result is a trivial baseline's (``agent.type == "baseline"``: no initialization)."""
    return data["agent"].get("type") == "baseline"


def baseline_problems(data: Mapping[str, Any], dist: Any) -> list[str]:
    """A baseline's result: a baseline of this suite defined for ``dist``, with its own settings, and no
    initialization (it has no parameters)."""
    from baselines.trivial import BASELINES, baselines_for

    name, problems = data["agent"].get("name"), []
    if name not in BASELINES:
        problems.append(f"agent.name {name!r} is not a baseline of this suite ({', '.join(BASELINES)}).")
    elif name not in baselines_for(dist):
        problems.append(
            f"agent.name {name!r} is not defined for {dist.id}; its baselines: "
            f"{', '.join(baselines_for(dist)) or 'none'}."
        )
    else:
        expected = BASELINES[name](dist).hyperparameters()
        problems += [
            f"agent.{line} (baseline {name!r})." for line in recipe_differences(expected, data["agent"])
        ]
    if data["init"]["kind"] != "scratch":
        problems.append(f"init: baseline {name!r} has no parameters, so its result names no initialization.")
    return problems


def recipe_problems(data: Mapping[str, Any], ref: Reference, protocol_id: str) -> list[str]:
    """One line per field where the result's ``agent`` record departs from the protocol's recipe."""
    return [
        f"agent.{line}; {protocol_id} is ranked only for its recipe (build the agent with "
        "agents.make_agent(dist), or mark the run custom)."
        for line in recipe_differences(ref.recipe, data["agent"])
    ]


def coverage_problems(
    records: list[Mapping[str, Any]], held_out: list[str], seeds: list[int], dist_id: str
) -> list[str]:
    """Every held-out task must appear exactly once for every seed of the protocol (all of them:
    ``min_seeds`` is a floor for protocols, not a discount for submissions)."""
    known, allowed = set(held_out), set(seeds)
    pairs = Counter((r["task_id"], r["seed"]) for r in records)
    problems = []
    unknown = sorted({r["task_id"] for r in records} - known)
    if unknown:
        problems.append(f"records name tasks that are not held-out tasks of {dist_id}: {listed(unknown)}.")
    bad_seeds = sorted({r["seed"] for r in records} - allowed)
    if bad_seeds:
        problems.append(f"records use seeds outside the protocol's {sorted(allowed)}: {listed(bad_seeds)}.")
    duplicates = sorted(f"{t}@seed{s}" for (t, s), n in pairs.items() if n > 1)
    if duplicates:
        problems.append(f"records repeat a task and seed: {listed(duplicates)}; each run appears once.")
    seen = {t for t, _ in pairs}
    missing = [t for t in held_out if t not in seen]
    if missing:
        problems.append(
            f"missing held-out tasks ({len(missing)} of {len(held_out)}): {listed(missing)}; every task of "
            "the protocol's split must be evaluated."
        )
    seeds_of: dict[Any, set[int]] = {}
    for t, s in pairs:
        seeds_of.setdefault(t, set()).add(s)
    lacking = [
        f"{t} (seeds {sorted(allowed - seeds_of[t])})"
        for t in held_out
        if t in seen and seeds_of[t] != allowed
    ]
    if lacking:
        problems.append(
            f"tasks missing some of the protocol's seeds {sorted(allowed)}: {listed(lacking)}; every task "
            "is evaluated once for every protocol seed."
        )
    return problems


def _range_text(low: float, high: float) -> str:
    return f"[{low:g}, {high:g}]"


class _Collector:
    """Record indices grouped by kind of problem (one line per kind)."""

    def __init__(self) -> None:
        self.found: dict[str, list[int]] = {}

    def add(self, message: str, index: int) -> None:
        self.found.setdefault(message, []).append(index)

    def lines(self) -> list[str]:
        return [f"records {listed(idx)}: {msg}" for msg, idx in self.found.items()]


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _in_range(value: float, name: str) -> bool:
    low, high = SCORE_RANGES[name]
    return low <= value <= high


def score_problems(records: list[Mapping[str, Any]], metric: str, curve_y: str | None = None) -> list[str]:
    """Types, ranges and consistency of every score of every record.

    Args:
        records: The result's records (with or without their per-run ``curve``).
        metric: The protocol's metric (``final`` is ``scores[metric]``).
        curve_y: The curves' ``y_name`` when records carry no curve (stored entries), for the range of
            ``auc``.

    Returns:
        One line per kind of problem, naming the records and the valid range.
    """
    try:
        metric_low, metric_high = score_range(metric)
    except InvalidArgumentError as exc:
        return [f"protocol metric: {exc}"]
    out = _Collector()
    for i, r in enumerate(records):
        final = r["final"]
        if not _is_float(final):
            out.add("final is not a float (scores are floats, as `metaenvs evaluate` writes them).", i)
        elif not metric_low <= final <= metric_high:
            out.add(
                f"final is outside the valid range {_range_text(metric_low, metric_high)} of {metric}.", i
            )
        for name, value in r["scores"].items():
            if name not in SCORE_RANGES:
                out.add(f"scores[{name!r}] is not a score the suite knows ({', '.join(SCORE_RANGES)}).", i)
            elif not _is_float(value):
                out.add(f"scores[{name!r}] is not a float.", i)
            elif not _in_range(value, name):
                out.add(f"scores[{name!r}] is outside its valid range {_range_text(*SCORE_RANGES[name])}.", i)
        if r["scores"].get(metric) != final:
            out.add(f"final is not scores[{metric!r}] (the protocol's metric).", i)
        normalized = r.get("normalized_final")
        if normalized is not None and not _is_float(normalized):
            out.add("normalized_final is not a float.", i)
        _curve_problems(r, i, out, curve_y)
    return out.lines()


def _curve_problems(r: Mapping[str, Any], i: int, out: _Collector, curve_y: str | None) -> None:
    auc, curve = r["auc"], r.get("curve")
    if not _is_float(auc):
        out.add("auc is not a float.", i)
        return
    y_name = curve["y_name"] if curve is not None else curve_y
    if y_name is not None and y_name not in SCORE_RANGES:
        out.add(f"curve y_name {y_name!r} is not a known learning-curve value.", i)
        return
    if y_name is not None and not _in_range(auc, y_name):
        out.add(f"auc is outside the valid range {_range_text(*SCORE_RANGES[y_name])} of {y_name}.", i)
    if curve is None:
        return
    steps, values = curve["steps"], curve["values"]
    if not values or len(steps) != len(values):
        out.add("curve is empty or its steps and values differ in length.", i)
        return
    if not all(_is_float(v) for v in values):
        out.add("curve values are not all floats.", i)
        return
    if not all(_in_range(v, y_name) for v in values):
        out.add(f"curve values are outside the valid range {_range_text(*SCORE_RANGES[y_name])}.", i)
    if any(b < a for a, b in itertools.pairwise(steps)):
        out.add("curve steps decrease.", i)
        return
    expected = curve_auc(values) if curve["x_unit"] == "inner_step" else curve_auc_xy(steps, values)
    if not math.isclose(expected, auc, rel_tol=REL_TOL, abs_tol=1e-12):
        out.add("auc does not match the area under the recorded curve.", i)


_INSTALLED: dict[tuple[str, ...], Any] = {}


def installed_distribution(dist_id: str, seed: int) -> tuple[Any, list[str]]:
    """``(distribution, [])`` made from the installed registry, or ``(None, [why not])``.

    A distribution made once is reused while its registered spec and the data folder are the same (a
    board scan validates many entries of one distribution; building a ratings or Meta-World one and
    hashing its splits takes seconds)."""
    import os

    import metaenvs

    if dist_id not in metaenvs.registry:
        return None, [
            f"dist_id {dist_id!r} is not registered in the installed suite; the board scores registered "
            "distributions only (see `metaenvs list`)."
        ]
    key = (dist_id, str(seed), metaenvs.spec(dist_id).to_json(), os.environ.get("METAENVS_DATA", ""))
    if key not in _INSTALLED:
        try:
            dist = metaenvs.make(dist_id, seed=seed)
        except MetaEnvsError as exc:
            return None, [f"dist_id {dist_id!r} cannot be made by the installed suite: {exc}"]
        if len(_INSTALLED) >= 64:
            _INSTALLED.clear()
        _INSTALLED[key] = dist
    return _INSTALLED[key], []
