"""The versioned result schema, and reading untrusted result files safely.

A result file is read in this order, and each step refuses with one line per problem:
size (before anything is parsed), UTF-8, strict JSON (no duplicate keys), schema version,
finiteness of every number, then the JSON Schema in ``result.schema.json``.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from leaderboard.safeio import read_limited
from metaenvs.errors import SubmissionError
from metaenvs.evaluation import RESULT_SCHEMA_VERSION

SCHEMA_FILE = "result.schema.json"
MAX_RESULT_BYTES = 32 * 1024 * 1024
"""Largest result file accepted (32 MiB); larger files are refused before they are parsed."""
MAX_PROBLEM_LINES = 20


@functools.cache
def result_schema() -> dict[str, Any]:
    """The JSON Schema of result files (shipped as package data ``leaderboard/result.schema.json``)."""
    text = resources.files("leaderboard").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise SubmissionError(f"duplicate key {key!r} in a JSON object: each field may appear once.")
        data[key] = value
    return data


MAX_INT_DIGITS = 30
"""Longest integer literal accepted in a JSON document: seeds and counts are small; scores are floats."""


def _small_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise SubmissionError(
            f"an integer of {digits} digits: numbers in a result are floats (scores) or small integers "
            f"(seeds, counts) of at most {MAX_INT_DIGITS} digits."
        )
    return int(text)


def parse_json(raw: bytes, where: str) -> Any:
    """Parse untrusted JSON bytes: UTF-8, strict, no duplicate keys, no huge integers.

    Args:
        raw: The document.
        where: What to call it in messages (a path).

    Returns:
        The document (NaN / Infinity tokens are parsed, so :func:`non_finite_paths` can name them).

    Raises:
        SubmissionError: Not UTF-8, not valid JSON, a duplicate key, an integer literal of more than
            :data:`MAX_INT_DIGITS` digits, or nesting too deep.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_small_int)
    except SubmissionError as exc:
        raise SubmissionError([f"{where}: {p}" for p in exc.problems]) from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}."
        ) from exc
    except RecursionError as exc:
        raise SubmissionError(f"{where}: JSON nested too deeply to be a result.") from exc
    except ValueError as exc:  # a float literal Python refuses to convert
        raise SubmissionError(f"{where}: a number that cannot be read ({str(exc)[:100]}).") from exc


def read_json_limited(
    path: str | os.PathLike, max_bytes: int = MAX_RESULT_BYTES, *, follow_symlinks: bool = True
) -> Any:
    """Parse a JSON file that may come from anyone: a regular file, size-checked first, strict, UTF-8.

    Args:
        path: The file.
        max_bytes: Files larger than this are refused before they are read.
        follow_symlinks: Read a symbolic link's target (False for files inside a board).

    Returns:
        The parsed document (see :func:`parse_json`).

    Raises:
        SubmissionError: The file is missing, not a regular file, too large, not UTF-8 or not valid JSON.
    """
    path = Path(path)
    try:
        raw = read_limited(path, max_bytes, follow_symlinks=follow_symlinks)
    except SubmissionError as exc:
        if not os.path.lexists(path):
            raise SubmissionError(
                f"{path}: no such file (pass the JSON written by `metaenvs evaluate --out`)."
            ) from None
        raise exc
    return parse_json(raw, str(path))


def non_finite_paths(data: Any, prefix: str = "") -> Iterator[str]:
    """Paths (``records/3/final``) of every NaN or infinite number in ``data``."""
    if isinstance(data, float) and not math.isfinite(data):
        yield prefix or "(top level)"
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from non_finite_paths(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from non_finite_paths(value, f"{prefix}/{i}" if prefix else str(i))


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_PROBLEM_LINES:
        return lines
    return [
        *lines[:MAX_PROBLEM_LINES],
        f"... and {len(lines) - MAX_PROBLEM_LINES} more problems of this kind",
    ]


def _location(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(top level)"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def stored_result_schema() -> dict[str, Any]:
    """The result schema as board entries store results: records without their per-run curves."""
    schema = copy.deepcopy(result_schema())
    record = schema["$defs"]["record"]
    record["required"] = [k for k in record["required"] if k != "curve"]
    schema["properties"]["init"]["properties"].pop("path")
    return schema


def schema_problems(data: Any, *, stored: bool = False) -> list[str]:
    """One line per way ``data`` breaks the result schema (version, finiteness, shape); empty if none.

    Args:
        data: The parsed result.
        stored: Check it as a board entry stores it (:func:`stored_result_schema`).
    """
    if not isinstance(data, dict):
        return [f"a result is a JSON object, got a JSON {type(data).__name__}."]
    version = data.get("schema_version")
    if version != RESULT_SCHEMA_VERSION:
        return [
            f"schema_version {_short(version)} is not supported: this suite reads version "
            f"{RESULT_SCHEMA_VERSION}; re-run `metaenvs evaluate --out` with the installed suite."
        ]
    problems = [
        f"{where}: NaN or Inf is not a score; every value must be finite." for where in non_finite_paths(data)
    ]
    schema = stored_result_schema() if stored else result_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        if isinstance(error.instance, float) and not math.isfinite(error.instance):
            continue  # already named above
        problems.append(f"{_location(error)}: {_message(error)}")
    return _cap(problems)


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern":
        return f"{_short(error.instance)} is not allowed here (must match {error.validator_value})."
    if error.validator == "additionalProperties":
        return f"{error.message}; the schema allows only its listed fields."
    if error.validator in ("maxLength", "maxItems", "maxProperties"):
        return f"too long (limit {error.validator_value})."
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."
