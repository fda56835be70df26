"""Held-out evaluation: train from an initialization on every test task for every protocol seed.

``evaluate`` only relies on the agent contract (duck-typed, so this layer imports
no agent code): ``agent.reset(seed)``, ``agent.set_parameters(tensors)``,
``agent.learn(task, steps, seed=...)`` returning a curve with ``auc()`` /
``final()`` / ``to_dict()``, ``agent.evaluate(task, seed=...)`` returning
``{metric: value}``, ``agent.step_unit`` and ``agent.hyperparameters()``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from metaenvs.core import TaskDistribution
from metaenvs.errors import InvalidArgumentError, RecipeError, WrongDistributionError
from metaenvs.io import environment_versions, load_initialization, write_json_atomic
from metaenvs.protocol import EXECUTION_KEYS, Protocol, recipe_differences

RESULT_SCHEMA_VERSION = 2
"""Version of the result JSON; ``leaderboard/result.schema.json`` describes it (2: suite version, dist seed,
protocol id, hardware, frames, normalised scores, submitter, code link, commands)."""

NO_NORMALISATION = (None, "none")


def hardware_info() -> dict[str, Any]:
    """The machine a result was measured on (CPU, cores, torch threads, accelerator)."""
    accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator,
    }


@dataclass(frozen=True)
class Summary:
    """Aggregates of an evaluation: for each of ``final``, ``auc`` (and ``normalized_final`` where the
    protocol normalises), what :func:`metaenvs.aggregates.summarize` gives: IQM and mean with 95%
    bootstrap CIs (the leaderboard's statistic). ``str(summary)`` is a readable table."""

    blocks: Mapping[str, Mapping[str, Any]]

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        return self.blocks[key]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in results."""
        return json.loads(json.dumps(self.blocks))

    def __str__(self) -> str:
        lines = []
        for key, block in self.blocks.items():
            arrow = "higher is better" if block["higher_is_better"] else "lower is better"
            lines.append(
                f"{block['score']} ({key}, {arrow}): IQM {format_interval(block['iqm'])}, mean "
                f"{format_interval(block['mean'])} (95% bootstrap CIs; {block['n_tasks']} tasks, "
                f"{block['n_runs']} runs)"
            )
        return "\n".join(lines)


def format_score(value: float) -> str:
    """A score to 4 significant digits (``0.3231``, ``1.234e+05``): what tables and bars show."""
    return f"{value:.4g}"


def format_interval(estimate: Mapping[str, float]) -> str:
    """``0.3231 [0.2811, 0.3702]`` from ``{"estimate", "low", "high"}``."""
    low, high = format_score(estimate["low"]), format_score(estimate["high"])
    return f"{format_score(estimate['estimate'])} [{low}, {high}]"


@dataclass
class EvaluationResult:
    """Raw per-task × per-seed scores and curves, plus everything that names what was measured."""

    dist_id: str
    spec: dict[str, Any]
    protocol: dict[str, Any]
    protocol_hash: str
    split_hash: str
    records: list[dict[str, Any]]
    init: dict[str, Any]
    agent: dict[str, Any]
    compute: dict[str, Any]
    versions: dict[str, str] = field(default_factory=environment_versions)
    dist_seed: int = 0
    hardware: dict[str, Any] = field(default_factory=hardware_info)
    submitter: str | None = None
    code_url: str | None = None
    commands: list[str] = field(default_factory=list)
    held_out_tasks_are_a_sample: bool = True

    def scores(self, key: str = "final") -> list[float]:
        """``final`` scores or ``auc`` values of every task × seed, in record order."""
        return [float(r[key]) for r in self.records]

    def summary(self) -> Summary:
        """IQM and mean with 95% bootstrap CIs of the final score, the AUC and (where the protocol
        normalises) the normalised score: the statistics the leaderboard ranks, by the same code."""
        from metaenvs.aggregates import summarize

        protocol = self.protocol
        sample = self.held_out_tasks_are_a_sample
        blocks = {
            "final": summarize(
                self.records,
                metric=protocol["metric"],
                higher_is_better=protocol["higher_is_better"],
                resample_tasks=sample,
            ),
            "auc": summarize(
                self.records,
                metric=f"{protocol['metric']} training-curve AUC",
                higher_is_better=self.records[0]["curve"]["y_name"] == "episode_return",
                resample_tasks=sample,
                key="auc",
            ),
        }
        if protocol.get("normalisation") not in NO_NORMALISATION and all(
            r.get("normalized_final") is not None for r in self.records
        ):
            blocks["normalized_final"] = summarize(
                self.records,
                metric=f"{protocol['normalisation']}_normalized",
                higher_is_better=True,
                resample_tasks=sample,
                key="normalized_final",
            )
        return Summary(blocks)

    def per_task(self) -> list[dict[str, Any]]:
        """One row per task: the mean and range over seeds of the raw score (and the normalised one)."""
        rows: dict[str, dict[str, Any]] = {}
        for record in self.records:
            row = rows.setdefault(
                record["task_id"], {"task_id": record["task_id"], "final": [], "normalized": []}
            )
            row["final"].append(float(record["final"]))
            if record.get("normalized_final") is not None:
                row["normalized"].append(float(record["normalized_final"]))
        out = []
        for row in rows.values():
            finals, norm = row["final"], row["normalized"]
            out.append(
                {
                    "task_id": row["task_id"],
                    "seeds": len(finals),
                    "mean": sum(finals) / len(finals),
                    "min": min(finals),
                    "max": max(finals),
                    "normalized_mean": sum(norm) / len(norm) if norm else None,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The result as the JSON document ``leaderboard/result.schema.json`` describes."""
        from metaenvs import __version__

        data = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "suite_version": __version__,
            "dist_id": self.dist_id,
            "dist_seed": self.dist_seed,
            "spec": self.spec,
            "protocol": self.protocol,
            "protocol_id": f"{self.protocol['dist_id']}#{self.protocol['name']}",
            "protocol_hash": self.protocol_hash,
            "split_hash": self.split_hash,
            "seeds": self.protocol["seeds"],
            "records": self.records,
            "init": self.init,
            "agent": self.agent,
            "compute": self.compute,
            "versions": self.versions,
            "hardware": self.hardware,
            "summary": self.summary().to_dict(),
        }
        if self.submitter is not None:
            data["submitter"] = self.submitter
        if self.code_url is not None:
            data["code_url"] = self.code_url
        if self.commands:
            data["commands"] = list(self.commands)
        return data

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically."""
        write_json_atomic(path, self.to_dict())
        return Path(path)


def _resolve_init(
    init: Any, dist: TaskDistribution, allow_foreign: bool
) -> tuple[Mapping[str, torch.Tensor] | None, dict[str, Any]]:
    if init is None:
        return None, {"kind": "scratch", "sha256": None, "card": None}
    if isinstance(init, (str, os.PathLike)):
        tensors, card = load_initialization(init)
        origin = card.get("dist_id")
        if origin != dist.id:
            where = "records no distribution" if origin is None else f"says it was meta-trained on {origin}"
            if not allow_foreign:
                raise WrongDistributionError(
                    f"The card of {init} {where}, not {dist.id}. Evaluate it on its own distribution, or "
                    "pass allow_foreign_init=True (metaenvs evaluate --allow-foreign-init) to transfer it "
                    "on purpose; the result then records the transfer."
                )
            print(f"note: evaluating {init}, meta-trained on {origin}, on {dist.id} (--allow-foreign-init)")
        return tensors, {"kind": "file", "sha256": card["sha256"], "card": card, "path": str(init)}
    if isinstance(init, Mapping):
        return init, {"kind": "in_memory", "sha256": None, "card": None}
    raise InvalidArgumentError(
        f"init must be None, a path to a .safetensors file or a dict of tensors, got {type(init).__name__}."
    )


def prescribed_recipe(agent: Any, dist: TaskDistribution) -> dict[str, Any] | None:
    """The settings of the agent the protocol prescribes, of ``agent``'s kind (``None`` if the agent's
    class cannot build one: ``for_distribution`` is the agent contract's constructor)."""
    build = getattr(type(agent), "for_distribution", None)
    return None if build is None else build(dist, seed=0).hyperparameters()


def _checked_recipe(agent: Any, dist: TaskDistribution, protocol: Protocol, custom: bool) -> Protocol:
    """``protocol``, or its custom form recording the agent's settings; refuse an off-recipe agent."""
    used = agent.hyperparameters()
    expected = prescribed_recipe(agent, dist) if protocol.agent == dist.protocol.agent else None
    differences = (
        recipe_differences(expected, used)
        if expected is not None
        else [f"{type(agent).__name__} cannot be checked against the recipe (no for_distribution)"]
    )
    if not differences:
        return protocol
    if not custom:
        raise RecipeError(
            f"The agent departs from the recipe of {protocol.id}: " + "; ".join(differences) + ". Build it "
            "with agents.make_agent(dist), or pass custom=True (metaenvs evaluate --custom) to record a "
            "custom protocol, which the leaderboard does not rank."
        )
    recipe = {k: v for k, v in used.items() if k not in EXECUTION_KEYS}
    return protocol.customised(agent={**protocol.agent, **recipe})


def evaluate(
    agent: Any,
    dist: TaskDistribution,
    init: Any = None,
    protocol: Protocol | None = None,
    *,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    submitter: str | None = None,
    code_url: str | None = None,
    commands: list[str] | None = None,
    custom: bool = False,
    allow_foreign_init: bool = False,
) -> EvaluationResult:
    """Train from ``init`` on every task of the protocol's split, for every protocol seed.

    Args:
        agent: An agent built for ``dist``.
        dist: The task distribution.
        init: ``None`` (a fresh random initialization per seed), a dict of tensors, or the
            path of an initialization saved with its card (its sha256 is checked).
        protocol: The recipe; default ``dist.protocol``.
        out: If given, write the result JSON here.
        progress: Show a progress bar.
        submitter: Optional name shown on the leaderboard.
        code_url: Optional link to the code that produced the initialization.
        commands: The shell commands that produced the result (recorded for reproduction).
        custom: Allow an agent whose settings depart from the protocol's recipe; the result is then
            recorded under a ``custom`` protocol (with the agent's own settings), which the board
            never ranks. Without it such an agent is refused before anything runs.
        allow_foreign_init: Evaluate an initialization whose card names another distribution.

    Returns:
        The :class:`EvaluationResult`, with the whole learning curve of every run.
    """
    protocol = dist.protocol if protocol is None else protocol
    if protocol.dist_id != dist.id:
        raise WrongDistributionError(
            f"Protocol {protocol.id} belongs to {protocol.dist_id}, not to {dist.id}."
        )
    dist.check_protocol(protocol)
    if getattr(agent, "step_unit", protocol.budget_unit) != protocol.budget_unit:
        raise InvalidArgumentError(
            f"{protocol.id} budgets {protocol.budget_unit} but {type(agent).__name__} counts "
            f"{agent.step_unit}; use the agent the protocol prescribes (agents.make_agent(dist))."
        )
    protocol = _checked_recipe(agent, dist, protocol, custom)
    tensors, init_info = _resolve_init(init, dist, allow_foreign_init)
    tasks = dist.tasks(protocol.split)
    records, t0 = [], time.perf_counter()
    bar = tqdm(total=len(tasks) * len(protocol.seeds), disable=not progress, desc=f"evaluate {dist.id}")
    for task in tasks:
        for seed in protocol.seeds:
            agent.reset(seed)
            if tensors is not None:
                agent.set_parameters(tensors)
            curve = agent.learn(task, protocol.budget, seed=seed)
            scores = agent.evaluate(task, seed=seed, curve=curve)
            if protocol.metric not in scores:
                raise InvalidArgumentError(
                    f"Agent reported {sorted(scores)}, not the protocol metric {protocol.metric!r}."
                )
            auc = curve.auc()
            if not math.isfinite(auc) or not all(math.isfinite(float(v)) for v in scores.values()):
                raise InvalidArgumentError(
                    f"Task {task.id!r}, seed {seed}: the run has no finite score (scores {scores}, curve "
                    f"area {auc}): with a budget of {protocol.budget} {protocol.budget_unit}"
                    + (" no training episode finished" if curve.y_name == "episode_return" else "")
                    + "; raise the budget (--budget) so that every run can be scored."
                )
            record = {
                "task_id": task.id,
                "seed": seed,
                "final": scores[protocol.metric],
                "auc": auc,
                "scores": scores,
                "curve": curve.to_dict(),
            }
            if protocol.normalisation not in NO_NORMALISATION:
                record["normalized_final"] = dist.normalize_score(task, scores[protocol.metric])
            records.append(record)
            bar.update(1)
    bar.close()
    compute = {
        "budget_unit": protocol.budget_unit,
        "total_steps": protocol.budget * len(records),
        "wall_seconds": time.perf_counter() - t0,
        "device": str(getattr(agent, "device", "cpu")),
    }
    if dist.kind == "rl":
        compute["frames"] = compute["total_steps"] * int(getattr(dist, "frames_per_step", 1))
    result = EvaluationResult(
        dist.id,
        json.loads(dist.spec.to_json()),
        protocol.to_dict(),
        protocol.hash,
        dist.split_hash(),
        records,
        init_info,
        agent.hyperparameters(),
        compute,
        dist_seed=dist.seed,
        submitter=submitter,
        code_url=code_url,
        commands=list(commands or []),
        held_out_tasks_are_a_sample=bool(dist.held_out_tasks_are_a_sample),
    )
    if out is not None:
        result.save(out)
    return result
