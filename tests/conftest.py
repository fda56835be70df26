"""Shared fixtures.

Tests read the shared real data (``METAENVS_DATA``, set by ``.ci/run``) through a session data
folder that links those files and adds generated files, in the publishers' formats, for the
data sets the shared folder lacks; downloads are switched off (``METAENVS_OFFLINE=1``).

A test whose assertions hold only on a real data set is marked
``@pytest.mark.real_data("omniglot", ...)`` (catalogue names, or ``*.npz`` files of the shared
folder). Without them it is skipped, and the reason names each data set and how to get it; with
``METAENVS_REQUIRE_DATA=1`` (set by ``.ci/run``) it fails instead, so CI cannot skip it.
"""

from __future__ import annotations

import os
import warnings

import pytest

import metaenvs

from . import datagen
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


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "real_data(*names): needs these real data sets (catalogue names) or shared files (*.npz); "
        "skips without them, fails under METAENVS_REQUIRE_DATA=1",
    )


def pytest_runtest_setup(item):
    names = tuple(n for mark in item.iter_markers("real_data") for n in mark.args)
    reason = datagen.missing_reason(names) if names else None
    if reason is None:
        return
    if datagen.require_data():
        pytest.fail(f"{datagen.REQUIRE_VAR}=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def shared():
    """The shared data folder (tests that read files from it carry ``real_data`` marks)."""
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


@pytest.fixture
def restore_catalog():
    """Let a test add catalogue entries, and restore the catalogue afterwards."""
    from metaenvs.data import catalog

    saved = dict(catalog.CATALOG)
    yield
    catalog.CATALOG.clear()
    catalog.CATALOG.update(saved)
