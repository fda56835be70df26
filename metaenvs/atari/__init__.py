"""Atari task distributions: ALE games as tasks under the Machado et al. (2018) protocol."""

from metaenvs.atari.distribution import AtariGames
from metaenvs.atari.envs import AtariConfig, make_atari_env

__all__ = ["AtariConfig", "AtariGames", "make_atari_env"]
