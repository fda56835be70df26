"""Shared fixtures. Tests read real data through METAENVS_DATA (set by .ci/run)."""

from __future__ import annotations

import warnings

import pytest

import metaenvs

warnings.filterwarnings("ignore", message=".*(Box|symmetric|infinity|spec).*", category=UserWarning)


@pytest.fixture
def sinusoid():
    return metaenvs.make("Synthetic/Sinusoid-v0", seed=0)


@pytest.fixture
def cartpole():
    return metaenvs.make("Control/CartPolePhysics-v0", seed=0)


@pytest.fixture
def scratch_registry():
    """Let a test register ids, and remove them afterwards."""
    before = set(metaenvs.registry)
    yield metaenvs.registry
    for key in set(metaenvs.registry) - before:
        del metaenvs.registry[key]
