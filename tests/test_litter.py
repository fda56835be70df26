"""Normal use leaves nothing behind and prints no library warnings (#14)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run_cleanly(tmp_path, runs):
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(scratch_tmp), "PYTHONWARNINGS": "default"}
    for argv in runs:
        done = subprocess.run(
            [sys.executable, "-m", "metaenvs.cli", *argv, "--no-progress"],
            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Warning" not in done.stderr and "WARN" not in done.stderr, (argv, done.stderr[-2000:])
    # torch's own compile cache (one folder per user, reused by every run) is not per-run litter
    left = [p.name for p in scratch_tmp.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], f"temporary files or folders were left behind: {left}"


def test_normal_use_prints_no_library_warnings_and_leaves_no_temp_folders(tmp_path):
    cp = ["--dist", "Control/CartPolePhysics-v0"]
    runs = [
        ["train", "--dist", "Synthetic/Sinusoid-v0", "--meta-steps", "2", "--out", "sin"],
        ["train", *cp, "--meta-steps", "1", "--meta-batch", "1", "--inner-steps", "200", "--out", "cp"],
        ["evaluate", *cp, "--init", "cp/init.safetensors", "--budget", "2000", "--seeds", "0", "--custom"],
    ]
    _run_cleanly(tmp_path, runs)


@pytest.mark.real_data("omniglot")  # a subprocess reads the real files (stand-ins fail their checksums)
def test_vision_training_prints_no_warnings(tmp_path):
    argv = ["train", "--dist", "Vision/Omniglot5way1shot-v0", "--meta-steps", "1", "--meta-batch", "1"]
    _run_cleanly(tmp_path, [[*argv, "--out", "om"]])
