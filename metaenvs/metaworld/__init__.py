"""Meta-World v3's meta-learning benchmarks (ML1, ML10, ML45) as task distributions."""

from metaenvs.metaworld.distribution import SCALES, MetaWorldML
from metaenvs.metaworld.envs import MAX_PATH_LENGTH, MetaWorldTaskEnv, metaworld_version

__all__ = ["MAX_PATH_LENGTH", "SCALES", "MetaWorldML", "MetaWorldTaskEnv", "metaworld_version"]
