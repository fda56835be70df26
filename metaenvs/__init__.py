"""metaenvs: registered task distributions for meta-learning.

Example:
    >>> import metaenvs, numpy as np
    >>> dist = metaenvs.make("Synthetic/Sinusoid-v0", seed=0)
    >>> tasks = dist.sample(np.random.default_rng(0), "train", 5)
    >>> data = tasks[0].load()
"""

from metaenvs import errors
from metaenvs.core import (
    RLTaskDistribution,
    SupervisedData,
    SupervisedTaskDistribution,
    Task,
    TaskDistribution,
)
from metaenvs.protocol import Protocol
from metaenvs.registration import TaskSpec, make, pprint_registry, register, register_spec, registry, spec

__version__ = "0.1.0"

__all__ = [
    "Protocol",
    "RLTaskDistribution",
    "SupervisedData",
    "SupervisedTaskDistribution",
    "Task",
    "TaskDistribution",
    "TaskSpec",
    "__version__",
    "errors",
    "make",
    "pprint_registry",
    "register",
    "register_spec",
    "registry",
    "spec",
]

from metaenvs import builtin as _builtin

del _builtin
