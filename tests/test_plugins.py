"""Your own distributions in every CLI command: ``module:Family/Name-vN`` ids and the
``metaenvs.distributions`` entry-point group (#14), through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MODULE = """
import metaenvs
metaenvs.register("{id}", "metaenvs.synthetic.sinusoid:SinusoidRegression",
                  kwargs={{"test_tasks": 4}}, description="a user's own distribution")
"""


def _package(root: Path, module: str, dist_id: str) -> None:
    (root / f"{module}.py").write_text(MODULE.format(id=dist_id))


def _cli(root: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "metaenvs.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=root,
        stdin=subprocess.DEVNULL,
    )


def test_module_prefixed_ids_work_in_every_command(tmp_path):
    _package(tmp_path, "my_tasks", "Mine/Sines-v0")
    dist = "my_tasks:Mine/Sines-v0"
    info = _cli(tmp_path, "info", dist)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["id"] == "Mine/Sines-v0"
    train = _cli(tmp_path, "train", "--dist", dist, "--meta-steps", "2", "--inner-steps", "2", "--out", "run")
    assert train.returncode == 0, train.stderr
    evaluate = _cli(
        tmp_path,
        "evaluate",
        "--dist",
        dist,
        "--init",
        "run/init.safetensors",
        "--budget",
        "2",
        "--out",
        "r.json",
        "--no-progress",
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert json.loads((tmp_path / "r.json").read_text())["dist_id"] == "Mine/Sines-v0"


def test_a_missing_module_is_a_clean_error_naming_it(tmp_path):
    done = _cli(tmp_path, "info", "no_such_module_here:Mine/Sines-v0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Cannot import 'no_such_module_here'" in done.stderr


def test_installed_packages_register_through_the_entry_point_group(tmp_path):
    _package(tmp_path, "plugged_tasks", "Plugged/Sines-v0")
    info = tmp_path / "plugged_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugged-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[metaenvs.distributions]\nplugged = plugged_tasks\n")
    listed = _cli(tmp_path, "list", "--family", "Plugged")
    assert listed.returncode == 0 and "Plugged/Sines-v0" in listed.stdout, listed.stderr
    shown = _cli(tmp_path, "info", "Plugged/Sines-v0")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == "Plugged/Sines-v0", shown.stderr
