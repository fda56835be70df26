"""Small argument checks that raise :class:`InvalidArgumentError` naming the bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from metaenvs.errors import InvalidArgumentError


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def non_negative_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is finite and >= 0, else raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise."""
    if non_negative_float(name, value) == 0:
        raise InvalidArgumentError(f"{name} must be > 0, got {value!r}.")
    return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    choices = list(choices)
    if value not in choices:
        raise InvalidArgumentError(f"{name} must be one of {choices}, got {value!r}.")
    return value


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
