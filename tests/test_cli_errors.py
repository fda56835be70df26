"""Malformed invocations and board layouts end in one clean line, never a traceback or a hang (#13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SIN = "Synthetic/Sinusoid-v0"


def _layouts(tmp: Path) -> dict[str, Path]:
    """Files and folders the invocations point at."""
    (tmp / "afile").write_text("not a folder")
    (tmp / "notjson.json").write_text("{nope")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "huge_int.json").write_text('{"schema_version": ' + "9" * 5000 + "}")
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    board = tmp / "fifo_board" / "entries"
    board.mkdir(parents=True)
    os.mkfifo(board / "0123456789abcdef.json")
    dir_board = tmp / "dir_board" / "entries" / "0123456789abcdef.json"
    dir_board.mkdir(parents=True)
    zero = tmp / "zero_board" / "entries"
    zero.mkdir(parents=True)
    (zero / "0123456789abcdef.json").symlink_to("/dev/zero")
    (tmp / "index_dir_board" / "index.sqlite").mkdir(parents=True)
    (tmp / "init.safetensors").write_bytes(b"(dp0\nS'w'\np1\nI1\ns.")
    (tmp / "init.json").write_text("{broken card")
    run = tmp / "run"
    run.mkdir()
    (run / "checkpoint.json").write_text(json.dumps({"step": 1, "tensors": "../../x", "sha256": "0"}))
    return {"tmp": tmp}


def _invocations(tmp: Path) -> list[list[str]]:
    train = ["train", "--dist", SIN, "--no-progress"]
    evaluate = ["evaluate", "--dist", SIN, "--no-progress"]
    return [
        [],
        ["nonsense"],
        ["info", "Synthetic/Sinusiod-v0"],
        ["info", "Not an id"],
        ["info", SIN, "--seed", "-1"],
        ["info", SIN, "--max-tasks", "zero"],
        ["list", "--family"],
        [*train, "--algo", "reptil", "--out", str(tmp / "o1")],
        [*train, "--meta-lr", "1e308", "--out", str(tmp / "o2")],
        [*train, "--meta-lr", "nan", "--out", str(tmp / "o3")],
        [*train, "--meta-lr", "-1", "--out", str(tmp / "o4")],
        [*train, "--meta-steps", "0", "--out", str(tmp / "o5")],
        [*train, "--meta-batch", "1.5", "--out", str(tmp / "o6")],
        [*train, "--inner-steps", "-3", "--out", str(tmp / "o7")],
        [
            *train,
            "--algo",
            "amaml",
            "--inner-steps",
            "1000000000",
            "--meta-steps",
            "1",
            "--out",
            str(tmp / "o8"),
        ],
        [*train, "--meta-steps", "1", "--out", str(tmp / "afile")],
        [*train, "--meta-steps", "1", "--out", "/proc/no/such/folder"],
        [*train, "--meta-steps", "1", "--out", str(tmp / "run")],
        [*train, "--address", "auto", "--out", str(tmp / "o9")],
        [*train, "--executor", "spark", "--out", str(tmp / "o10")],
        [*evaluate, "--seeds", "a,b"],
        [*evaluate, "--seeds", "2-0"],
        [*evaluate, "--seeds", "0,0"],
        [*evaluate, "--budget", "0"],
        [*evaluate, "--split", "holdout"],
        [*evaluate, "--init", str(tmp / "missing.safetensors")],
        [*evaluate, "--init", str(tmp / "init.safetensors")],
        ["submit", str(tmp / "missing.json"), "--board", str(tmp / "b1")],
        ["submit", str(tmp / "notjson.json"), "--board", str(tmp / "b2")],
        ["submit", str(tmp / "list.json"), "--board", str(tmp / "b3")],
        ["submit", str(tmp / "huge_int.json"), "--board", str(tmp / "b4")],
        ["submit", str(tmp / "afile"), "--board", str(tmp / "afile")],
        ["board", "show", "--board", str(tmp / "afile")],
        ["board", "show", "--board", str(tmp / "dangling")],
        ["board", "show", "--board", str(tmp / "index_dir_board")],
        ["board", "verify", "../../etc", "--board", str(tmp / "b5")],
        ["board", "verify", "0123456789abcdef", "--board", str(tmp / "dir_board")],
        ["board", "render", str(tmp / "afile"), "--board", str(tmp / "zero_board")],
        ["data", "fetch", "no-such-dataset"],
        ["data", "path", "--data-dir"],
    ]


def test_at_least_thirty_malformed_invocations_end_cleanly(tmp_path):
    _layouts(tmp_path)
    invocations = _invocations(tmp_path)
    assert len(invocations) >= 30
    env = {**os.environ, "METAENVS_OFFLINE": "1"}
    failures = []
    for argv in invocations:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "metaenvs.cli", *argv],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            failures.append(f"{argv}: hung")
            continue
        output = done.stdout + done.stderr
        may_succeed = "index_dir_board" in " ".join(argv)  # the index is a cache: a folder there is ignored
        if "Traceback" in output or (done.returncode == 0 and not may_succeed):
            failures.append(f"{argv}: rc={done.returncode}\n{output[-600:]}")
    assert not failures, "\n\n".join(failures)


def test_arguments_are_checked_before_torch_is_imported():
    code = (
        "import sys; from metaenvs.cli import main; "
        "rc = main(['train', '--dist', 'Synthetic/Sinusoid-v0', '--algo', 'reptil', '--out', 'x']); "
        "print(rc, 'torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["2", "False", "False"], done.stdout + done.stderr


def test_cli_algorithm_names_are_the_registered_ones():
    from baselines import ALGORITHMS
    from metaenvs.cli import ALGORITHM_NAMES

    assert sorted(ALGORITHM_NAMES) == sorted(ALGORITHMS)


@pytest.mark.parametrize(
    ("text", "seeds"), [("0,1,2", (0, 1, 2)), ("0-4", (0, 1, 2, 3, 4)), ("0-2,7", (0, 1, 2, 7)), ("5", (5,))]
)
def test_seed_lists_and_ranges(text, seeds):
    from metaenvs.cli import parse_seeds

    assert parse_seeds(text) == seeds
