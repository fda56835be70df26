"""Meta-learners (as agent hooks) and the meta-training driver."""

from __future__ import annotations

from typing import Any

from baselines.amaml import AMAML
from baselines.base import MetaLearner
from baselines.cts import CTS
from baselines.driver import MetaTrainResult, meta_batch, meta_train
from baselines.fomaml import FOMAML, FOMAMLPlusPlus
from baselines.imaml import IMAML
from baselines.leap import Leap
from baselines.maml import MAML, ExactAdjoint
from baselines.pretraining import MultiTask
from baselines.reptile import Reptile, Scratch
from metaenvs.errors import InvalidArgumentError

ALGORITHMS: dict[str, type[MetaLearner]] = {
    "leap": Leap,
    "reptile": Reptile,
    "fomaml": FOMAML,
    "fomamlpp": FOMAMLPlusPlus,
    "cts": CTS,
    "mtl": MultiTask,
    "scratch": Scratch,
    "maml": MAML,
    "imaml": IMAML,
    "amaml": AMAML,
    "adjoint": ExactAdjoint,
}


def make_meta_learner(name: str, dist: Any = None, **kwargs: Any) -> MetaLearner:
    """Build the meta-learner registered as ``name`` (``metaenvs train --algo NAME``).

    Args:
        name: The algorithm (a key of :data:`ALGORITHMS`).
        dist: A task distribution whose ``meta_defaults`` for this algorithm apply where ``kwargs``
            does not set them (the settings a family needs where the algorithm's own do not train it).
        **kwargs: The algorithm's arguments.
    """
    if name not in ALGORITHMS:
        raise InvalidArgumentError(f"Unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}.")
    defaults = dict(getattr(dist, "meta_defaults", {}).get(name, {})) if dist is not None else {}
    return ALGORITHMS[name](**{**defaults, **kwargs})


__all__ = [
    "ALGORITHMS",
    "AMAML",
    "CTS",
    "FOMAML",
    "IMAML",
    "MAML",
    "ExactAdjoint",
    "FOMAMLPlusPlus",
    "Leap",
    "MetaLearner",
    "MetaTrainResult",
    "MultiTask",
    "Reptile",
    "Scratch",
    "make_meta_learner",
    "meta_batch",
    "meta_train",
]
