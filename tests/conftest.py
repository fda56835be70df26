"""Shared fixtures.

Tests read the shared real data (``METAENVS_DATA``, set by ``.ci/run``) through a session data
folder that links those files and adds generated files, in the publishers' formats, for the
data sets the shared folder lacks; downloads are switched off (``METAENVS_OFFLINE=1``).
"""

from __future__ import annotations

import os
import warnings

import pytest

import metaenvs

from .datagen import SHARED, build_data_root

warnings.filterwarnings("ignore", message=".*(Box|symmetric|infinity|spec).*", category=UserWarning)


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory):
    """The session's data folder (see the module docstring)."""
    root = build_data_root(tmp_path_factory.mktemp("data"))
    saved = {k: os.environ.get(k) for k in ("METAENVS_DATA", "METAENVS_OFFLINE")}
    os.environ["METAENVS_DATA"], os.environ["METAENVS_OFFLINE"] = str(root), "1"
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def shared():
    return SHARED


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
