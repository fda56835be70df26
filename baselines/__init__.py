"""Meta-learners (as agent hooks) and the meta-training driver."""

from __future__ import annotations

from typing import Any

from baselines.base import MetaLearner
from baselines.driver import MetaTrainResult, meta_batch, meta_train
from baselines.reptile import Reptile, Scratch
from metaenvs.errors import InvalidArgumentError

ALGORITHMS: dict[str, type[MetaLearner]] = {"reptile": Reptile, "scratch": Scratch}


def make_meta_learner(name: str, **kwargs: Any) -> MetaLearner:
    """Build the meta-learner registered as ``name`` (``metaenvs train --algo NAME``)."""
    if name not in ALGORITHMS:
        raise InvalidArgumentError(f"Unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}.")
    return ALGORITHMS[name](**kwargs)


__all__ = [
    "ALGORITHMS",
    "MetaLearner",
    "MetaTrainResult",
    "Reptile",
    "Scratch",
    "make_meta_learner",
    "meta_batch",
    "meta_train",
]
