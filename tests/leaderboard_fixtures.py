"""Fixtures of the leaderboard tests: tiny registered distributions, results evaluated on them, helpers.

The tiny distributions keep their family's official protocol (budget, seeds, metric): only the number of
held-out tasks is small, so evaluation and verification run in seconds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
from pathlib import Path

import pytest

import metaenvs
from agents import make_agent
from metaenvs.errors import SubmissionError
from metaenvs.evaluation import evaluate
from metaenvs.io import save_initialization

TINY_SINUSOID = "Test/TinySinusoid-v0"
TINY_JESTER = "Test/TinyJester-v0"


@pytest.fixture(scope="module")
def tiny_ids():
    """Register the tiny distributions for the module, and remove them afterwards."""
    metaenvs.register(
        TINY_SINUSOID, "metaenvs.synthetic.sinusoid:SinusoidRegression", {"test_tasks": 4, "val_tasks": 2}
    )
    metaenvs.register(TINY_JESTER, "metaenvs.ratings:Jester1", {"test_tasks": 2, "val_tasks": 2})
    yield TINY_SINUSOID, TINY_JESTER
    for key in (TINY_SINUSOID, TINY_JESTER):
        metaenvs.registry.pop(key, None)


def make_init(dist, path: Path, seed: int, algorithm: str = "testinit") -> Path:
    """Save the agent's initial weights for ``seed`` as an initialization with its card."""
    agent = make_agent(dist, seed=seed)
    tensors = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    card = {
        "algorithm": algorithm,
        "dist_id": dist.id,
        "protocol_id": dist.protocol.id,
        "protocol_hash": dist.protocol.hash,
        "split_hash": dist.split_hash(),
    }
    save_initialization(path, tensors, card)
    return path


@pytest.fixture(scope="module")
def tiny_results(tiny_ids, tmp_path_factory):
    """Results on the tiny sinusoid: from scratch, and from two saved initializations."""
    root = tmp_path_factory.mktemp("results")
    dist = metaenvs.make(TINY_SINUSOID)
    out = {}
    for name, seed in (("a", 101), ("b", 202)):
        init = make_init(dist, root / f"init_{name}.safetensors", seed, algorithm=f"algo-{name}")
        path = root / f"result_{name}.json"
        evaluate(make_agent(dist), dist, init, out=path, commands=[f"python make_{name}.py"])
        out[name] = (path, init)
    path = root / "result_scratch.json"
    evaluate(make_agent(dist), dist, None, out=path, submitter="Ada")
    out["scratch"] = (path, None)
    return out


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write(path: Path, data: dict, **kwargs) -> Path:
    Path(path).write_text(json.dumps(data, **kwargs))
    return Path(path)


def mutated(source: Path, target: Path, change) -> Path:
    """Copy a result with ``change(data)`` applied."""
    data = copy.deepcopy(load(source))
    change(data)
    return write(target, data)


def snapshot(folder: Path) -> dict[str, object]:
    """Every path under ``folder`` and what it is: a regular file's bytes, a link's target, or the
    kind of anything else (a folder, a FIFO). Never follows links and never opens anything but regular
    files, so a FIFO or a link to ``/dev/zero`` in a board cannot hang it."""
    import os
    import stat

    folder = Path(folder)
    if not os.path.lexists(folder):
        return {}
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            mode = os.lstat(path).st_mode
            key = str(path.relative_to(folder))
            if stat.S_ISLNK(mode):
                out[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                out[key] = path.read_bytes()
            else:
                out[key] = ("kind", stat.S_IFMT(mode))
    return out


def refused(board_dir: Path, result: Path, init: Path | None = None) -> list[str]:
    """Submit, expect a refusal, check the board is byte for byte unchanged; return the problem lines."""
    import leaderboard

    before = snapshot(board_dir)
    with pytest.raises(SubmissionError) as info:
        leaderboard.submit(result, board_dir, init=init)
    assert snapshot(board_dir) == before, "a refused submission changed the board"
    problems = info.value.problems
    assert problems and all(p and "\n" not in p for p in problems)
    return problems


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Fail (instead of hanging) if the block runs longer than ``seconds`` (SIGALRM; main thread only)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a read blocked or did not end")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def point_init_at(data: dict, sha: str) -> None:
    """Make a result name the initialization with this sha256 (result and card)."""
    data["init"]["sha256"] = sha
    data["init"]["card"]["sha256"] = sha
