"""The versioned result schema, and reading untrusted result files safely.

A result file is read in this order, and each step refuses with one line per problem:
size (before anything is parsed), UTF-8, strict JSON (no duplicate keys), schema version,
finiteness of every number, then the JSON Schema in ``result.schema.json``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

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


def read_json_limited(path: str | os.PathLike, max_bytes: int = MAX_RESULT_BYTES) -> Any:
    """Parse a JSON file that may come from anyone: size-checked first, strict, UTF-8.

    Args:
        path: The file.
        max_bytes: Files larger than this are refused before they are read.

    Returns:
        The parsed document (NaN / Infinity tokens are parsed, so :func:`non_finite_paths` can name them).

    Raises:
        SubmissionError: The file is missing, too large, not UTF-8 or not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: no such file (pass the JSON written by `metaenvs evaluate --out`).")
    size = path.stat().st_size
    if size > max_bytes:
        raise SubmissionError(
            f"{path}: {size} bytes is over the size limit of {max_bytes} bytes; results hold raw scores and "
            "curves only, so a larger file is refused unread."
        )
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise SubmissionError(f"{path}: grew past the size limit of {max_bytes} bytes while being read.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}."
        ) from exc
    except RecursionError as exc:
        raise SubmissionError(f"{path}: JSON nested too deeply to be a result.") from exc


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


def schema_problems(data: Any) -> list[str]:
    """One line per way ``data`` breaks the result schema (version, finiteness, shape); empty if none."""
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
    validator = jsonschema.Draft202012Validator(result_schema())
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
