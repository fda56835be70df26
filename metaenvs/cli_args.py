"""Argument types of the ``metaenvs`` command: every value is checked here, before torch or SB3 is
imported, so that a bad argument is refused as fast as ``--help`` answers."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

from metaenvs.errors import MetaEnvsError

ALGORITHM_NAMES = (
    "leap",
    "reptile",
    "fomaml",
    "fomamlpp",
    "cts",
    "mtl",
    "scratch",
    "maml",
    "imaml",
    "amaml",
    "adjoint",
)
"""``--algo`` choices (``baselines.ALGORITHMS``'s keys, listed here so that arguments are checked before
torch and SB3 are imported; a test keeps the two equal)."""
FLOAT32_MAX = 3.4028234663852886e38
MAX_SEEDS = 10_000


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``, or a message naming the bad value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _step_size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a step size such as 0.1") from None
    if not math.isfinite(value) or not 0 < value <= FLOAT32_MAX:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a finite number > 0 that float32 parameters can be stepped by (<= 3.4e38)"
        )
    return value


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive ranges, mixable: ``"0-2,7"``) as a tuple of distinct seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else range(int(part), int(part) + 1)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a seed list: give integers >= 0 separated by commas, or ranges such as 0-4"
            ) from None
        if span.start < 0 or len(span) == 0:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r} is not a range of seeds >= 0")
        seeds.extend(span)
        if len(seeds) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"{text!r} names more than {MAX_SEEDS} seeds")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed; each seed may appear once")
    return tuple(seeds)


def _dist_id(text: str) -> str:
    """A registered id (checked before any heavy import); unknown ids list the nearest ones."""
    import metaenvs

    try:
        metaenvs.spec(text)
    except MetaEnvsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class DEFAULTS(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every option's default (where it has a value to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def command_line(command: str, argv: Sequence[str]) -> str:
    """The shell command as typed (``metaenvs evaluate ...``), recorded in results and board entries."""
    import shlex

    return shlex.join(["metaenvs", *argv]) if argv else f"metaenvs {command}"
