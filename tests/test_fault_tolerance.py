"""A meta-training killed at any point resumes to the same bits; checkpoints are atomic and complete.

(A Ray worker killed mid-task is retried with the same result: ``tests/test_ray.py``.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import SupervisedAgent
from baselines import Leap, MultiTask, Reptile, meta_train
from baselines.checkpoint import load_checkpoint
from metaenvs.io import load_initialization

RUN = """
import sys
import torch
torch.set_num_threads(1)
import metaenvs
from agents import SupervisedAgent
from baselines import Leap, meta_train
dist = metaenvs.make("Synthetic/Sinusoid-v0")
agent = SupervisedAgent.for_distribution(dist, seed=3, batch_size=5)
meta_train(agent, dist, Leap(meta_optimizer="adam", meta_lr=0.01), meta_steps=int(sys.argv[2]),
           meta_batch_size=4, inner_steps=20, seed=9, out_dir=sys.argv[1], progress=False)
"""


def reference(out_dir, meta_steps):
    """The same run uninterrupted, in this process (one torch thread, as in the killed process)."""
    from metaenvs import make

    dist = make("Synthetic/Sinusoid-v0")
    agent = SupervisedAgent.for_distribution(dist, seed=3, batch_size=5)
    learner = Leap(meta_optimizer="adam", meta_lr=0.01)
    kwargs = {"meta_batch_size": 4, "inner_steps": 20, "seed": 9, "progress": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return meta_train(agent, dist, learner, meta_steps=meta_steps, out_dir=out_dir, **kwargs)
    finally:
        torch.set_num_threads(threads)


def checkpoint_step(folder: Path) -> int:
    try:
        return json.loads((folder / "checkpoint.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def run_with_kills(folder: Path, meta_steps: int, kills: int, rng: np.random.Generator) -> list[int]:
    """Start the run, SIGKILL it ``kills`` times at random moments after some progress, then let it finish."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed_at = []
    for attempt in range(kills + 1):
        proc = subprocess.Popen([sys.executable, "-c", RUN, str(folder), str(meta_steps)], env=env)
        if attempt == kills:
            assert proc.wait(timeout=300) == 0
            break
        # Kill once the run has reached a drawn meta step (progress, not wall-clock time, decides where),
        # then a moment later: anywhere in the next step (mid-task, mid-update, mid-checkpoint).
        target = max(checkpoint_step(folder) + 1, int(rng.integers(1, meta_steps // 2 + 1)))
        deadline = time.monotonic() + 120
        while checkpoint_step(folder) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(checkpoint_step(folder))
    return killed_at


@pytest.mark.parametrize("kills", [2])
def test_killed_meta_training_resumes_bitwise(tmp_path, kills):
    full = reference(tmp_path / "full", 16)
    killed_at = run_with_kills(tmp_path / "killed", 16, kills, np.random.default_rng(0))
    assert len(killed_at) == kills and min(killed_at) < 16  # killed before the end at least once
    resumed, card = load_initialization(tmp_path / "killed" / "init.safetensors")
    assert all(torch.equal(resumed[k], full.init[k]) for k in full.init)
    assert (tmp_path / "killed" / "init.safetensors").read_bytes() == full.init_path.read_bytes()
    assert card["meta_steps"] == 16


@pytest.mark.slow
def test_killed_many_times_at_random_points_resumes_bitwise(tmp_path):
    full = reference(tmp_path / "full", 12)
    run_with_kills(tmp_path / "killed", 12, 6, np.random.default_rng(1))
    assert (tmp_path / "killed" / "init.safetensors").read_bytes() == full.init_path.read_bytes()


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(sinusoid, tmp_path, monkeypatch):
    import baselines.checkpoint as checkpoint

    def agent():
        return SupervisedAgent.for_distribution(sinusoid, seed=1, batch_size=4)

    kwargs = {"meta_steps": 5, "meta_batch_size": 2, "inner_steps": 3, "seed": 2, "progress": False}
    full = meta_train(agent(), sinusoid, Reptile(meta_optimizer="adam", meta_lr=0.1), **kwargs)
    real = checkpoint.write_json_atomic

    def crash_at_step_3(path, data):
        if data.get("step") == 3:  # the tensor file of step 3 is written, its JSON is not
            raise KeyboardInterrupt("killed while checkpointing")
        real(path, data)

    monkeypatch.setattr(checkpoint, "write_json_atomic", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        meta_train(agent(), sinusoid, Reptile(meta_optimizer="adam", meta_lr=0.1), out_dir=tmp_path, **kwargs)
    _, state = load_checkpoint(tmp_path)  # the last complete checkpoint, its sha256 checked
    assert state["step"] == 2 and (tmp_path / state["tensors"]).is_file()
    monkeypatch.setattr(checkpoint, "write_json_atomic", real)
    resumed = meta_train(
        agent(), sinusoid, Reptile(meta_optimizer="adam", meta_lr=0.1), out_dir=tmp_path, **kwargs
    )
    assert resumed.resumed_from == 2
    assert all(torch.equal(resumed.init[k], full.init[k]) for k in full.init)


@pytest.mark.parametrize("meta_optimizer", ["adam", "momentum"])
def test_meta_optimizer_and_heads_round_trip(sinusoid, tmp_path, meta_optimizer):
    agent = SupervisedAgent.for_distribution(sinusoid, seed=0)
    kwargs = {"meta_steps": 3, "meta_batch_size": 2, "inner_steps": 3, "progress": False, "out_dir": tmp_path}
    trained = MultiTask(meta_optimizer=meta_optimizer, meta_lr=0.01)
    meta_train(agent, sinusoid, trained, max_steps_this_call=2, **kwargs)
    restored = MultiTask(meta_optimizer=meta_optimizer, meta_lr=0.01)
    restored.initialize(SupervisedAgent.for_distribution(sinusoid, seed=0))
    tensors, state = load_checkpoint(tmp_path)
    restored.load_state(tensors, state["meta_learner"])
    a, b = trained.meta_optimizer.state_dict(), restored.meta_optimizer.state_dict()
    groups = json.loads(json.dumps(a["param_groups"]))  # through JSON, Adam's betas become a list
    assert groups == b["param_groups"] and a["state"].keys() == b["state"].keys()
    for index, entry in a["state"].items():
        for key, value in entry.items():
            other = b["state"][index][key]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other
    assert restored.meta_step == trained.meta_step == 2
    assert list(restored.heads) == list(trained.heads)
    assert all(torch.equal(restored.heads[t][k], v) for t, h in trained.heads.items() for k, v in h.items())
