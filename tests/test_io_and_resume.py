import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agents import SupervisedAgent
from baselines import Reptile, meta_train
from metaenvs.errors import CheckpointError, NonFiniteError
from metaenvs.io import load_initialization, save_initialization, sha256_file
from metaenvs.seeding import derive_seed, scoped_global_seed


def _flat(tensors):
    return torch.cat([t.flatten() for t in tensors.values()])


def test_initialization_round_trip_with_card(tmp_path):
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    card = save_initialization(tmp_path / "init.safetensors", tensors, {"algorithm": "reptile"})
    loaded, read = load_initialization(tmp_path / "init.safetensors")
    assert read == json.loads(json.dumps(card)) and read["sha256"] == sha256_file(
        tmp_path / "init.safetensors"
    )
    assert torch.equal(loaded["w"], tensors["w"]) and read["parameters"]["w"] == [2, 3]


def test_nan_never_reaches_a_saved_init(tmp_path):
    with pytest.raises(NonFiniteError, match="'w'"):
        save_initialization(tmp_path / "init.safetensors", {"w": torch.tensor([1.0, float("nan")])}, {})
    assert not any(tmp_path.iterdir())


def test_tampered_init_is_refused(tmp_path):
    save_initialization(tmp_path / "init.safetensors", {"w": torch.ones(3)}, {})
    save_file({"w": torch.zeros(3)}, str(tmp_path / "init.safetensors"))
    with pytest.raises(CheckpointError, match="sha256"):
        load_initialization(tmp_path / "init.safetensors")


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "init.safetensors"
    path.write_bytes(pickle.dumps({"w": [1.0]}))
    (tmp_path / "init.json").write_text(json.dumps({"sha256": sha256_file(path)}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_initialization(path)
    torch.save({"w": torch.ones(2)}, path)
    (tmp_path / "init.json").write_text(json.dumps({"sha256": sha256_file(path)}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_initialization(path)


def test_missing_card_is_explained(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="no JSON card"):
        load_initialization(tmp_path / "x.safetensors")


def test_killed_run_resumes_bitwise(sinusoid, tmp_path):
    def agent():
        return SupervisedAgent.for_distribution(sinusoid, seed=2, batch_size=4)

    kwargs = {"meta_steps": 6, "meta_batch_size": 2, "inner_steps": 3, "seed": 5, "progress": False}
    full = meta_train(
        agent(), sinusoid, Reptile(meta_optimizer="adam", meta_lr=0.01), **kwargs, out_dir=tmp_path / "full"
    )
    partial = meta_train(
        agent(),
        sinusoid,
        Reptile(meta_optimizer="adam", meta_lr=0.01),
        **kwargs,
        out_dir=tmp_path / "resumed",
        max_steps_this_call=4,
    )
    assert partial.init_path is None and len(partial.history) == 4
    resumed = meta_train(
        agent(),
        sinusoid,
        Reptile(meta_optimizer="adam", meta_lr=0.01),
        **kwargs,
        out_dir=tmp_path / "resumed",
    )
    assert resumed.resumed_from == 4
    assert torch.equal(_flat(full.init), _flat(resumed.init))
    assert (tmp_path / "full" / "init.safetensors").read_bytes() == (
        tmp_path / "resumed" / "init.safetensors"
    ).read_bytes()
    rows = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("meta_step")


def test_resume_with_other_config_is_refused(sinusoid, tmp_path):
    agent = SupervisedAgent.for_distribution(sinusoid)
    meta_train(
        agent,
        sinusoid,
        Reptile(),
        meta_steps=2,
        meta_batch_size=1,
        inner_steps=2,
        progress=False,
        out_dir=tmp_path,
        max_steps_this_call=1,
    )
    with pytest.raises(CheckpointError, match="differs in: meta_batch_size"):
        meta_train(
            agent,
            sinusoid,
            Reptile(),
            meta_steps=2,
            meta_batch_size=2,
            inner_steps=2,
            progress=False,
            out_dir=tmp_path,
        )


def test_init_card_names_protocol_and_split(sinusoid, tmp_path):
    agent = SupervisedAgent.for_distribution(sinusoid)
    result = meta_train(
        agent,
        sinusoid,
        Reptile(),
        meta_steps=1,
        meta_batch_size=1,
        inner_steps=2,
        progress=False,
        out_dir=tmp_path,
    )
    _, card = load_initialization(result.init_path)
    assert card["protocol_hash"] == sinusoid.protocol.hash and card["split_hash"] == sinusoid.split_hash()
    assert card["algorithm"] == "reptile" and card["dist_id"] == "Synthetic/Sinusoid-v0"


def test_scoped_global_seed_restores_state():
    before_t, before_n = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    with scoped_global_seed(3):
        a = torch.rand(2), np.random.rand(2)
    with scoped_global_seed(3):
        b = torch.rand(2), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert torch.equal(torch.random.get_rng_state(), before_t)
    assert np.array_equal(np.random.get_state()[1], before_n)


def test_derive_seed_is_stable():
    assert derive_seed(1, "task", 2) == derive_seed(1, "task", 2) != derive_seed(1, "task", 3)
