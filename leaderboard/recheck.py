"""Re-check a stored entry file before it enters the index: entry files arrive through pull requests,
so they are untrusted too. The id must follow from the hashes, the stored result must fit the
schema (per-run curves aside), and the stored aggregates must be what its raw scores give.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import jsonschema

from leaderboard.schema import non_finite_paths, result_schema
from leaderboard.validate import OFFICIAL_DIST_SEED, entry_id_for, recompute_aggregates
from metaenvs.errors import SubmissionError
from metaenvs.evaluation import NO_NORMALISATION
from metaenvs.protocol import Protocol

ENTRY_FIELDS = {
    "entry_version",
    "id",
    "init_key",
    "submitted_at",
    "submit_command",
    "result_sha256",
    "result",
    "aggregates",
    "raw_aggregates",
    "curves",
    "verification",
}


@functools.cache
def stored_result_schema() -> dict[str, Any]:
    """The result schema as entries store results: records without their per-run curves."""
    schema = copy.deepcopy(result_schema())
    record = schema["$defs"]["record"]
    record["required"] = [k for k in record["required"] if k != "curve"]
    return schema


def recheck_entry(entry: Any, stem: str) -> None:
    """Refuse an entry file that was edited by hand or does not belong under its name.

    Args:
        entry: The parsed entry file.
        stem: Its file name without ``.json``.

    Raises:
        SubmissionError: One line per problem, each naming the entry.
    """
    where = f"entries/{stem}.json"
    problems = _shape_problems(entry)
    if not problems:
        problems = _identity_problems(entry, stem) + _aggregate_problems(entry)
    if problems:
        raise SubmissionError([f"{where}: {p}" for p in problems])


def _shape_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
        return [f"an entry has exactly the fields {sorted(ENTRY_FIELDS)}."]
    bad = list(non_finite_paths(entry))
    if bad:
        return [f"{p}: NaN or Inf" for p in bad[:5]]
    validator = jsonschema.Draft202012Validator(stored_result_schema())
    errors = sorted(validator.iter_errors(entry["result"]), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"result/{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:10]]


def _identity_problems(entry: dict[str, Any], stem: str) -> list[str]:
    result = entry["result"]
    init_key = result["init"]["sha256"] or "scratch"
    problems = []
    if entry["init_key"] != init_key:
        problems.append("init_key is not the result's initialization sha256.")
    expected = entry_id_for(result["protocol_hash"], init_key)
    if entry["id"] != expected or stem != expected:
        problems.append(
            f"the id of this protocol and initialization is {expected}, not {entry['id']} / {stem}."
        )
    return problems


def _aggregate_problems(entry: dict[str, Any]) -> list[str]:
    result = entry["result"]
    protocol = Protocol.from_dict(result["protocol"])
    records = [dict(r) for r in result["records"]]
    if protocol.normalisation not in NO_NORMALISATION:
        records = _renormalized(result, records)
    aggregates, raw = recompute_aggregates(records, protocol)
    problems = []
    if not _same(aggregates, entry["aggregates"]) or not _same(raw, entry["raw_aggregates"]):
        problems.append(
            "the stored aggregates are not those of its raw scores (edited by hand?); the board recomputes "
            "them: re-submit the result instead of editing the entry."
        )
    return problems


def _renormalized(result: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import metaenvs

    dist = metaenvs.make(result["dist_id"], seed=OFFICIAL_DIST_SEED)
    tasks = {t.id: t for t in dist.tasks(result["protocol"]["split"])}
    for record in records:
        task = tasks.get(record["task_id"])
        value = None if task is None else dist.normalize_score(task, record["final"])
        if value is None:
            raise SubmissionError(f"{record['task_id']}: no normalised score in the installed suite.")
        record["normalized_final"] = value
    return records


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b
