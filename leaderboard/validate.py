"""Validate a submitted result against the installed suite and recompute what the board shows.

Nothing a submission reports about itself is trusted. In order: the schema (one gate: later checks
rely on its shape), then in one list every other problem: the protocol and split hashes and the spec
against the installed suite's, the agent's recipe against the protocol's
(:mod:`leaderboard.checks`), every held-out task exactly once for every protocol seed, every score a
finite float inside its metric's valid range, the records consistent with their curves, the compute
budget, and the initialization (:mod:`leaderboard.inits`: it must be given, load into the protocol's
model, and carry a card naming this distribution, split and protocol). Reported aggregates must agree
with the recomputed ones, and the aggregates that are stored are always the recomputed ones.

The same validator re-checks every entry file of a board (``stored=True``: the records are kept without
their per-run curves, whose summary the entry holds).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leaderboard.aggregate import curve_summary
from leaderboard.checks import (
    REL_TOL,
    baseline_problems,
    coverage_problems,
    installed_distribution,
    is_baseline,
    listed,
    recipe_problems,
    reference,
    score_problems,
)
from leaderboard.inits import MAX_INIT_BYTES, init_problems
from leaderboard.safeio import read_limited
from leaderboard.schema import MAX_RESULT_BYTES, parse_json, schema_problems
from metaenvs.aggregates import summarize
from metaenvs.core import LOCATION_KWARGS
from metaenvs.errors import MetaEnvsError, SubmissionError
from metaenvs.evaluation import NO_NORMALISATION
from metaenvs.metrics import mean_ci
from metaenvs.protocol import CUSTOM, sha256_json

OFFICIAL_DIST_SEED = 0
"""The board scores every distribution's official split: the one ``metaenvs.make(id)`` (seed 0) gives."""


@dataclass
class Submission:
    """A validated result and what the board recomputed from it.

    Attributes:
        result: The submitted result (as parsed).
        result_sha256: sha256 of the submitted file's bytes.
        entry_id: 16 hex digits derived from the protocol hash and ``init_key``.
        init_key: The canonical sha256 of the initialization's tensors, ``"scratch"``, or
            ``"baseline:NAME"`` for a trivial baseline.
        aggregates: Recomputed IQM and mean with bootstrap CIs (of normalised scores when the protocol
            normalises, else of the raw metric).
        raw_aggregates: The same of the raw metric when ``aggregates`` are of normalised scores, else None.
        curves: Mean and inter-quartile band of the held-out learning curves (None for a stored entry,
            which keeps its summary).
        init_bytes: The initialization file's bytes (None for scratch and for stored entries).
    """

    result: dict[str, Any]
    result_sha256: str
    entry_id: str
    init_key: str
    aggregates: dict[str, Any]
    raw_aggregates: dict[str, Any] | None
    curves: dict[str, Any] | None
    init_bytes: bytes | None = None


def entry_id_for(protocol_hash: str, init_key: str) -> str:
    """The entry id: a function of the protocol and the initialization only (same pair, same id)."""
    return sha256_json({"protocol_hash": protocol_hash, "init": init_key})[:16]


def load_submission(path: Any, max_bytes: int = MAX_RESULT_BYTES, *, init: Any = None) -> Submission:
    """Read, validate and aggregate a result file.

    Args:
        path: The result JSON written by ``metaenvs evaluate --out``.
        max_bytes: Size limit, checked before parsing.
        init: The initialization file the result was evaluated from (required when it names one).

    Raises:
        SubmissionError: With one line per problem found.
    """
    raw = read_limited(path, max_bytes)
    data = parse_json(raw, str(path))
    init_bytes, problems = None, []
    if init is not None:
        try:
            init_bytes = read_limited(init, MAX_INIT_BYTES)
        except SubmissionError as exc:
            problems = [f"--init: {p}" for p in exc.problems]
    try:
        sub = validate_result(data, hashlib.sha256(raw).hexdigest(), init=init_bytes)
    except SubmissionError as exc:
        raise SubmissionError(problems + exc.problems) from None
    if problems:
        raise SubmissionError(problems)
    return sub


def validate_result(
    data: Any, result_sha256: str = "", *, init: bytes | None = None, stored: bool = False
) -> Submission:
    """Validate a parsed result and recompute its aggregates (see the module docstring).

    Args:
        data: The parsed result.
        result_sha256: sha256 of the file it was parsed from.
        init: The initialization's bytes (required when the result names a file initialization).
        stored: The result as a board entry stores it (records without per-run curves).

    Raises:
        SubmissionError: With one line per problem found.
    """
    problems = schema_problems(data, stored=stored)
    if problems:
        raise SubmissionError(problems)
    dist, problems = installed_distribution(data["dist_id"], OFFICIAL_DIST_SEED)
    if dist is None:
        raise SubmissionError(problems)
    protocol = dist.protocol
    try:
        ref = reference(dist)
        held_out = [t.id for t in dist.tasks(protocol.split)]
    except MetaEnvsError as exc:
        raise SubmissionError(
            f"{dist.id}: the installed suite cannot build its protocol's agent: {exc}"
        ) from None
    records = data["records"]
    problems += _hash_problems(data, dist, protocol)
    baseline = is_baseline(data)
    problems += baseline_problems(data, dist) if baseline else recipe_problems(data, ref, protocol.id)
    problems += coverage_problems(records, held_out, list(protocol.seeds), dist.id)
    curve_y = _stored_curve_y(data) if stored else None
    problems += score_problems(records, protocol.metric, curve_y)
    problems += _compute_problems(data, dist, protocol)
    init_lines, canonical = init_problems(data, dist, ref, init)
    problems += init_lines
    if problems:
        raise SubmissionError(problems)
    normalized = _normalized_scores(data, dist, protocol)
    if normalized is not None:  # store the recomputed normalised scores, never the submitted ones
        for record, value in zip(records, normalized, strict=True):
            record["normalized_final"] = value["final"]
    problems += _reported_problems(data, protocol)
    if problems:
        raise SubmissionError(problems)
    aggregates, raw_aggregates = recompute_aggregates(records, protocol)
    init_key = canonical or (f"baseline:{data['agent'].get('name')}" if baseline else "scratch")
    return Submission(
        result=data,
        result_sha256=result_sha256,
        entry_id=entry_id_for(data["protocol_hash"], init_key),
        init_key=init_key,
        aggregates=aggregates,
        raw_aggregates=raw_aggregates,
        curves=None if stored else curve_summary([r["curve"] for r in records]),
        init_bytes=None if stored else init,
    )


def _stored_curve_y(data: Mapping[str, Any]) -> str:
    return "episode_return" if data["compute"]["budget_unit"] == "timesteps" else "train_loss"


def recompute_aggregates(records: list[dict[str, Any]], protocol: Any) -> tuple[dict, dict | None]:
    """``(aggregates, raw_aggregates)`` from raw records: of the normalised scores (``normalized_final``,
    which the caller has recomputed) and of the raw metric when the protocol normalises, else of the
    raw metric and ``None`` (:func:`metaenvs.aggregates.summarize`)."""
    resample_tasks = tasks_are_a_sample(protocol.dist_id)
    raw = summarize(
        records,
        metric=protocol.metric,
        higher_is_better=protocol.higher_is_better,
        resample_tasks=resample_tasks,
    )
    if protocol.normalisation in NO_NORMALISATION:
        return raw, None
    normalized = summarize(
        records,
        metric=f"{protocol.normalisation}_normalized",
        higher_is_better=True,
        resample_tasks=resample_tasks,
        key="normalized_final",
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
    name = data["protocol"]["name"]
    if isinstance(name, str) and name.startswith(CUSTOM):
        problems.append(
            f"protocol {data['protocol_id']!r} is custom (derived with Protocol.customised: another budget, "
            "seeds, split or recipe); custom protocols are never ranked: evaluate under the official one."
        )
    elif data["protocol_id"] != protocol.id:
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


SUMMARY_KEYS = ("final", "auc", "normalized_final")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): data}


def _reported_candidates(records: list[Mapping[str, Any]], key: str, protocol: Any) -> list[dict[str, Any]]:
    """What an honest ``summary[key]`` may hold: the mean with its Student-t half-width, and the
    bootstrap aggregates of :func:`metaenvs.aggregates.summarize` (either bootstrap form)."""
    values = [float(r[key]) for r in records]
    mean, half = mean_ci(values)
    out = [{"mean": mean, "ci95": half, "n": len(values)}]
    for resample in (True, False):
        agg = summarize(
            records,
            metric=protocol.metric,
            higher_is_better=protocol.higher_is_better,
            resample_tasks=resample,
            key=key,
        )
        out.append(_flat(agg))
    return out


def _reported_problems(data: Mapping[str, Any], protocol: Any) -> list[str]:
    """Reported aggregates must be those of the raw scores (they are checked, then discarded): every
    number reported under ``summary.final`` / ``auc`` / ``normalized_final`` must be one the board
    recomputes (strings and directions are descriptive and not compared)."""
    reported = data.get("summary")
    if reported is None:
        return []
    problems = []
    extra = sorted(set(reported) - set(SUMMARY_KEYS))
    if extra:
        problems.append(f"summary: unexpected aggregates {extra}; the board computes its own.")
    for key in SUMMARY_KEYS:
        got = reported.get(key)
        if got is None or (key == "normalized_final" and protocol.normalisation in NO_NORMALISATION):
            if got is not None:
                problems.append("summary.normalized_final: the protocol does not normalise scores.")
            continue
        if not isinstance(got, Mapping):
            problems.append(f"summary.{key}: reported {str(got)[:80]} is not an object of aggregates.")
            continue
        candidates = [_flat(c) for c in _reported_candidates(data["records"], key, protocol)]
        wrong = [
            path
            for path, value in _flat(got).items()
            if not isinstance(value, (str, bool))
            and not any(path in c and _close(value, c[path]) for c in candidates)
        ]
        if wrong:
            problems.append(
                f"summary.{key}: reported {listed(wrong)} disagree with the raw scores (or are not "
                "aggregates the board computes); reported aggregates are never trusted, so a result "
                "whose aggregates disagree with its raw scores is refused."
            )
    return problems


def _close(a: Any, b: Any) -> bool:
    if isinstance(b, bool) or isinstance(a, bool):
        return a is b
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return False
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12)
