"""Validate a submitted result against the installed suite and recompute what the board shows.

Nothing a submission reports about itself is trusted: the protocol and split hashes are compared
with the installed suite's, every held-out task and the protocol's minimum number of seeds must be
present, every value must be finite, reported aggregates must agree with the recomputed ones, and
the aggregates that are stored are always the recomputed ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leaderboard.aggregate import by_task, compute_aggregates, curve_summary
from leaderboard.schema import MAX_RESULT_BYTES, read_json_limited, schema_problems
from metaenvs.core import LOCATION_KWARGS
from metaenvs.errors import MetaEnvsError, SubmissionError
from metaenvs.evaluation import NO_NORMALISATION
from metaenvs.metrics import curve_auc, curve_auc_xy, mean_ci
from metaenvs.protocol import sha256_json

OFFICIAL_DIST_SEED = 0
"""The board scores every distribution's official split: the one ``metaenvs.make(id)`` (seed 0) gives."""
REL_TOL = 1e-9
SHOWN = 5


@dataclass
class Submission:
    """A validated result and what the board recomputed from it.

    Attributes:
        result: The submitted result (as parsed).
        result_sha256: sha256 of the submitted file's bytes.
        entry_id: 16 hex digits derived from the protocol hash and the initialization's sha256.
        init_key: The initialization's sha256, or ``"scratch"``.
        aggregates: Recomputed IQM and mean with bootstrap CIs (of normalised scores when the protocol
            normalises, else of the raw metric).
        raw_aggregates: The same of the raw metric when ``aggregates`` are of normalised scores, else None.
        curves: Mean and inter-quartile band of the held-out learning curves.
    """

    result: dict[str, Any]
    result_sha256: str
    entry_id: str
    init_key: str
    aggregates: dict[str, Any]
    raw_aggregates: dict[str, Any] | None
    curves: dict[str, Any]


def entry_id_for(protocol_hash: str, init_key: str) -> str:
    """The entry id: a function of the protocol and the initialization only (same pair, same id)."""
    return sha256_json({"protocol_hash": protocol_hash, "init": init_key})[:16]


def load_submission(path: Any, max_bytes: int = MAX_RESULT_BYTES) -> Submission:
    """Read, validate and aggregate a result file.

    Args:
        path: The result JSON written by ``metaenvs evaluate --out``.
        max_bytes: Size limit, checked before parsing.

    Raises:
        SubmissionError: With one line per problem found.
    """
    data = read_json_limited(path, max_bytes)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read(max_bytes + 1)).hexdigest()
    return validate_result(data, digest)


def validate_result(data: Any, result_sha256: str = "") -> Submission:
    """Validate a parsed result and recompute its aggregates (see :func:`load_submission`)."""
    problems = schema_problems(data)
    if problems:
        raise SubmissionError(problems)
    dist, problems = _installed_distribution(data)
    if dist is None:
        raise SubmissionError(problems)
    protocol = dist.protocol
    problems += _hash_problems(data, dist, protocol)
    problems += _record_problems(data, dist, protocol)
    problems += _init_problems(data, dist)
    if problems:
        raise SubmissionError(problems)
    normalized = _normalized_scores(data, dist, protocol)
    problems += _reported_problems(data)
    if problems:
        raise SubmissionError(problems)
    if normalized is not None:  # store the recomputed normalised scores, never the submitted ones
        for record, value in zip(data["records"], normalized, strict=True):
            record["normalized_final"] = value["final"]
    aggregates, raw_aggregates = recompute_aggregates(data["records"], protocol)
    init_key = data["init"]["sha256"] or "scratch"
    return Submission(
        result=data,
        result_sha256=result_sha256,
        entry_id=entry_id_for(data["protocol_hash"], init_key),
        init_key=init_key,
        aggregates=aggregates,
        raw_aggregates=raw_aggregates,
        curves=curve_summary([r["curve"] for r in data["records"]]),
    )


def recompute_aggregates(records: list[dict[str, Any]], protocol: Any) -> tuple[dict, dict | None]:
    """``(aggregates, raw_aggregates)`` from raw records: of the normalised scores (``normalized_final``,
    which the caller has recomputed) and of the raw metric when the protocol normalises, else of the
    raw metric and ``None``."""
    resample_tasks = tasks_are_a_sample(protocol.dist_id)
    raw = compute_aggregates(
        by_task(records),
        score_name=protocol.metric,
        higher_is_better=protocol.higher_is_better,
        resample_tasks=resample_tasks,
    )
    if protocol.normalisation in NO_NORMALISATION:
        return raw, None
    normalized = compute_aggregates(
        by_task(records, "normalized_final"),
        score_name=f"{protocol.normalisation}_normalized",
        higher_is_better=True,
        resample_tasks=resample_tasks,
    )
    return normalized, raw


def tasks_are_a_sample(dist_id: str) -> bool:
    """Whether the held-out tasks of ``dist_id`` are a sample of it, so that the bootstrap resamples
    tasks as well as runs (its class's ``held_out_tasks_are_a_sample``; Atari's listed games are not)."""
    import metaenvs

    try:
        factory = metaenvs.spec(dist_id).load_entry_point()
    except MetaEnvsError:
        return True
    return bool(getattr(factory, "held_out_tasks_are_a_sample", True))


def _listed(items: list[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _installed_distribution(data: Mapping[str, Any]) -> tuple[Any, list[str]]:
    import metaenvs

    dist_id = data["dist_id"]
    if dist_id not in metaenvs.registry:
        return None, [
            f"dist_id {dist_id!r} is not registered in the installed suite; the board scores registered "
            "distributions only (see `metaenvs list`)."
        ]
    return metaenvs.make(dist_id, seed=OFFICIAL_DIST_SEED), []


def _hash_problems(data: Mapping[str, Any], dist: Any, protocol: Any) -> list[str]:
    problems = []
    if data["protocol_hash"] != protocol.hash:
        problems.append(
            f"protocol_hash {data['protocol_hash'][:16]}... does not match the installed suite's protocol "
            f"{protocol.id} ({protocol.hash[:16]}...): evaluate under the official protocol (metaenvs "
            "evaluate without --budget / --seeds / --split), with this suite's version."
        )
    if sha256_json(data["protocol"]) != data["protocol_hash"]:
        problems.append("protocol: the protocol block does not hash to protocol_hash (it was edited).")
    if data["protocol_id"] != protocol.id:
        problems.append(f"protocol_id {data['protocol_id']!r} is not the official {protocol.id!r}.")
    split_hash = dist.split_hash()
    if data["split_hash"] != split_hash:
        problems.append(
            f"split_hash {data['split_hash'][:16]}... does not match the installed suite's held-out split "
            f"of {dist.id} ({split_hash[:16]}...): evaluate with --dist-seed {OFFICIAL_DIST_SEED} and "
            "this suite's version."
        )
    spec, installed = _portable_spec(data["spec"]), _portable_spec(json.loads(dist.spec.to_json()))
    if spec != installed:
        problems.append(f"spec does not match the installed spec of {dist.id}: {installed}.")
    if list(data["seeds"]) != list(protocol.seeds):
        problems.append(f"seeds {data['seeds']} are not the protocol's seeds {list(protocol.seeds)}.")
    return problems


def _portable_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec without where data lives on one machine (``data_dir``)."""
    kwargs = {k: v for k, v in spec["kwargs"].items() if k not in LOCATION_KWARGS}
    return {**spec, "kwargs": kwargs}


def _record_problems(data: Mapping[str, Any], dist: Any, protocol: Any) -> list[str]:
    records = data["records"]
    held_out = [t.id for t in dist.tasks(protocol.split)]
    known, allowed = set(held_out), set(protocol.seeds)
    pairs = Counter((r["task_id"], r["seed"]) for r in records)
    problems = []
    unknown = sorted({r["task_id"] for r in records} - known)
    if unknown:
        problems.append(f"records name tasks that are not held-out tasks of {dist.id}: {_listed(unknown)}.")
    bad_seeds = sorted({r["seed"] for r in records} - allowed)
    if bad_seeds:
        problems.append(f"records use seeds outside the protocol's {sorted(allowed)}: {_listed(bad_seeds)}.")
    duplicates = sorted(f"{t}@seed{s}" for (t, s), n in pairs.items() if n > 1)
    if duplicates:
        problems.append(f"records repeat a task and seed: {_listed(duplicates)}.")
    seeds_of = Counter(t for t, _ in pairs)
    missing = [t for t in held_out if t not in seeds_of]
    if missing:
        problems.append(
            f"missing held-out tasks ({len(missing)} of {len(held_out)}): {_listed(missing)}; every task of "
            f"the {protocol.split!r} split must be evaluated."
        )
    few = [f"{t} ({n})" for t, n in seeds_of.items() if t in known and n < protocol.min_seeds]
    if few:
        problems.append(f"tasks with fewer than the protocol's {protocol.min_seeds} seeds: {_listed(few)}.")
    problems += _score_problems(records, protocol)
    return problems + _compute_problems(data, dist, protocol)


def _score_problems(records: list[Mapping[str, Any]], protocol: Any) -> list[str]:
    bad_final, bad_auc, bad_curve = [], [], []
    for i, r in enumerate(records):
        if r["scores"].get(protocol.metric) != r["final"]:
            bad_final.append(i)
        curve = r["curve"]
        if not curve["values"] or len(curve["steps"]) != len(curve["values"]):
            bad_curve.append(i)
            continue
        auc = (
            curve_auc(curve["values"])
            if curve["x_unit"] == "inner_step"
            else curve_auc_xy(curve["steps"], curve["values"])
        )
        if not math.isclose(auc, r["auc"], rel_tol=REL_TOL, abs_tol=1e-12):
            bad_auc.append(i)
    problems = []
    if bad_final:
        problems.append(
            f"records {_listed(bad_final)}: final is not scores[{protocol.metric!r}] (the protocol's metric)."
        )
    if bad_curve:
        problems.append(
            f"records {_listed(bad_curve)}: curve is empty or its steps and values differ in length."
        )
    if bad_auc:
        problems.append(f"records {_listed(bad_auc)}: auc does not match the area under the recorded curve.")
    return problems


def _compute_problems(data: Mapping[str, Any], dist: Any, protocol: Any) -> list[str]:
    compute, problems = data["compute"], []
    if compute["budget_unit"] != protocol.budget_unit:
        problems.append(f"compute.budget_unit is not the protocol's {protocol.budget_unit!r}.")
    expected = protocol.budget * len(data["records"])
    if compute["total_steps"] != expected:
        problems.append(f"compute.total_steps {compute['total_steps']} is not budget x runs = {expected}.")
    if dist.kind == "rl":
        frames = expected * int(getattr(dist, "frames_per_step", 1))
        if compute.get("frames") != frames:
            problems.append(
                f"compute.frames {compute.get('frames')} is not total_steps x frames per step = {frames}."
            )
    return problems


def _init_problems(data: Mapping[str, Any], dist: Any) -> list[str]:
    init, problems = data["init"], []
    card = init["card"]
    if init["kind"] != "file":
        return problems
    if card["sha256"] != init["sha256"]:
        problems.append("init: the card's sha256 is not the initialization's sha256.")
    if card.get("dist_id", dist.id) != dist.id:
        problems.append(f"init: the initialization was meta-trained on {card['dist_id']}, not on {dist.id}.")
    if card.get("split_hash", dist.split_hash()) != dist.split_hash():
        problems.append(
            "init: the initialization was meta-trained under another split of the tasks, so it may have seen "
            f"held-out tasks; meta-train with --dist-seed {OFFICIAL_DIST_SEED} and this suite's version."
        )
    return problems


def _normalized_scores(data: Mapping[str, Any], dist: Any, protocol: Any) -> list[dict[str, Any]] | None:
    """Normalised scores recomputed from the raw ones with ``dist.normalize_score`` (never the submitted)."""
    if protocol.normalisation in NO_NORMALISATION:
        return None
    tasks = {t.id: t for t in dist.tasks(protocol.split)}
    out, problems = [], []
    for i, r in enumerate(data["records"]):
        value = dist.normalize_score(tasks[r["task_id"]], r["final"])
        if value is None or not math.isfinite(value):
            problems.append(
                f"records/{i}: {dist.id} has no {protocol.normalisation} normalisation for {r['task_id']}."
            )
            continue
        submitted = r.get("normalized_final")
        if submitted is not None and not math.isclose(submitted, value, rel_tol=REL_TOL, abs_tol=1e-12):
            problems.append(
                f"records/{i}: normalized_final {submitted} is not the normalised raw score {value}."
            )
        out.append({"task_id": r["task_id"], "seed": r["seed"], "final": value})
    if problems:
        raise SubmissionError(problems[:20])
    return out


def _reported_problems(data: Mapping[str, Any]) -> list[str]:
    """Reported aggregates must equal the recomputed ones (they are checked, then discarded)."""
    reported = data.get("summary")
    if reported is None:
        return []
    problems = []
    for key in ("final", "auc"):
        values = [float(r[key]) for r in data["records"]]
        mean, half = mean_ci(values)
        expected = {"mean": mean, "ci95": half, "n": len(values)}
        got = reported.get(key)
        if (
            not isinstance(got, Mapping)
            or set(got) != set(expected)
            or not all(_close(got[k], v) for k, v in expected.items())
        ):
            problems.append(
                f"summary.{key}: reported {got} but the raw scores give {expected}; reported aggregates "
                "are never trusted, so a result whose aggregates disagree with its raw scores is refused."
            )
    extra = sorted(set(reported) - {"final", "auc"})
    if extra:
        problems.append(f"summary: unexpected aggregates {extra}; the board computes its own.")
    return problems


def _close(a: Any, b: float) -> bool:
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        return False
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(float(a), b, rel_tol=REL_TOL, abs_tol=1e-12)
