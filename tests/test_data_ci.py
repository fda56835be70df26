"""CI runs every real-data test: the shared data sets are found, and a needed-data skip fails there.

``.ci/run`` exports ``METAENVS_REQUIRE_DATA=1``; under it a test marked ``real_data`` fails
instead of skipping, and the first test here checks that every shared data set was found.
"""

from __future__ import annotations

import os

import pytest

from . import datagen

REAL_SETS = ("omniglot", "movielens100k", "jester1", "mnist", "cifar10")
SHARED_FILES = (*datagen.COMPACT, "omniglot_105x105_bitpacked.npz")


def in_ci() -> bool:
    return datagen.require_data() or os.environ.get("CI", "").lower() == "true"


@pytest.mark.skipif(not in_ci(), reason="checks CI only (CI=true or METAENVS_REQUIRE_DATA=1)")
def test_ci_found_every_shared_data_set(data_root):
    assert datagen.require_data(), "CI must export METAENVS_REQUIRE_DATA=1 (see .ci/run)"
    missing = [n for n in (*REAL_SETS, *SHARED_FILES) if not datagen.has_real(n)]
    assert not missing, f"CI ran without the real data sets {missing} (looked in {datagen.SHARED})"
    for name in datagen.COMPACT:  # the session folder reads the shared files, not stand-ins
        assert (data_root / name).resolve() == (datagen.SHARED / name).resolve()


def test_needed_data_skips_with_a_reason_or_fails_when_required(monkeypatch, tmp_path):
    monkeypatch.setattr(datagen, "SHARED", tmp_path)
    monkeypatch.setattr(datagen, "_REAL", {})
    monkeypatch.delenv(datagen.REQUIRE_VAR, raising=False)
    reason = datagen.missing_reason(("omniglot", "jester1.npz"))
    assert "metaenvs data fetch omniglot" in reason and "Omniglot" in reason and "jester1.npz" in reason
    assert str(tmp_path) in reason and "METAENVS_DATA" in reason
    with pytest.raises(pytest.skip.Exception, match="metaenvs data fetch omniglot"):
        pytest_setup_for("omniglot")
    monkeypatch.setenv(datagen.REQUIRE_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match="METAENVS_REQUIRE_DATA=1 but this test needs"):
        pytest_setup_for("omniglot")
    (tmp_path / "jester1.npz").write_bytes(b"")
    monkeypatch.setattr(datagen, "_REAL", {})  # forget what was looked up
    assert datagen.missing_reason(("jester1.npz",)) is None


def pytest_setup_for(*names: str) -> None:
    """Run the conftest's setup hook for a test marked ``real_data(*names)``."""
    from . import conftest

    class Item:
        def iter_markers(self, name):
            return [pytest.mark.real_data(*names).mark] if name == "real_data" else []

    conftest.pytest_runtest_setup(Item())
