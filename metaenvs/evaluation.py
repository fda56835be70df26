"""Held-out evaluation: train from an initialization on every test task for every protocol seed.

``evaluate`` only relies on the agent contract (duck-typed, so this layer imports
no agent code): ``agent.reset(seed)``, ``agent.set_parameters(tensors)``,
``agent.learn(task, steps, seed=...)`` returning a curve with ``auc()`` /
``final()`` / ``to_dict()``, ``agent.evaluate(task, seed=...)`` returning
``{metric: value}``, ``agent.step_unit`` and ``agent.hyperparameters()``.
"""

from __future__ import annotations

import json
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
from metaenvs.errors import InvalidArgumentError, WrongDistributionError
from metaenvs.io import environment_versions, load_initialization, write_json_atomic
from metaenvs.metrics import mean_ci
from metaenvs.protocol import Protocol

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

    def scores(self, key: str = "final") -> list[float]:
        """``final`` scores or ``auc`` values of every task × seed, in record order."""
        return [float(r[key]) for r in self.records]

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and 95% CI half-width across tasks × seeds of the final score and the AUC."""
        out = {}
        for key in ("final", "auc"):
            mean, half = mean_ci(self.scores(key))
            out[key] = {"mean": mean, "ci95": half, "n": len(self.records)}
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
            "summary": self.summary(),
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


def _resolve_init(init: Any) -> tuple[Mapping[str, torch.Tensor] | None, dict[str, Any]]:
    if init is None:
        return None, {"kind": "scratch", "sha256": None, "card": None}
    if isinstance(init, (str, os.PathLike)):
        tensors, card = load_initialization(init)
        return tensors, {"kind": "file", "sha256": card["sha256"], "card": card, "path": str(init)}
    if isinstance(init, Mapping):
        return init, {"kind": "in_memory", "sha256": None, "card": None}
    raise InvalidArgumentError(
        f"init must be None, a path to a .safetensors file or a dict of tensors, got {type(init).__name__}."
    )


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
    tensors, init_info = _resolve_init(init)
    tasks = dist.tasks(protocol.split)
    records, t0 = [], time.perf_counter()
    bar = tqdm(total=len(tasks) * len(protocol.seeds), disable=not progress, desc=f"evaluate {dist.id}")
    for task in tasks:
        for seed in protocol.seeds:
            agent.reset(seed)
            if tensors is not None:
                agent.set_parameters(tensors)
            curve = agent.learn(task, protocol.budget, seed=seed)
            scores = agent.evaluate(task, seed=seed)
            if protocol.metric not in scores:
                raise InvalidArgumentError(
                    f"Agent reported {sorted(scores)}, not the protocol metric {protocol.metric!r}."
                )
            record = {
                "task_id": task.id,
                "seed": seed,
                "final": scores[protocol.metric],
                "auc": curve.auc(),
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
    )
    if out is not None:
        result.save(out)
    return result
