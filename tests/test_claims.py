"""The claims ledger: a result under another protocol is refused; CLAIMS.md is what the results give."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MODULES = ("claims", "claims_table", "leap_omniglot")


@contextlib.contextmanager
def benchmarks_on_path():
    """benchmarks/ on sys.path only for a while: left there, its metaworld.py would shadow the metaworld
    package for every later test."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield
    finally:
        sys.path.remove(str(BENCHMARKS))


def _load(name: str):
    with benchmarks_on_path():
        return importlib.import_module(name)


claims = _load("claims")
Claim, ClaimsError, render, row = claims.Claim, claims.ClaimsError, claims.render, claims.row


def claim(tmp_path: Path, expected: str) -> Claim:
    return Claim(
        key="toy",
        paper="Toy",
        claim="method A beats method B",
        paper_number="0.1",
        where="Table 1",
        command="python benchmarks/toy.py",
        result="toy.json",
        protocols=lambda: {"protocols|Toy/Dist-v0": expected},
        measure=lambda data: (f"{data['score']:.2f}", "1%", "direction only", ""),
    )


@pytest.mark.parametrize(
    "recorded, message",
    [
        ({"Toy/Dist-v0": "b" * 64}, "protocol hash bbbbbbbbbbbbbbbb... for protocols / Toy/Dist-v0 is not"),
        ({}, "records no protocol hash for protocols / Toy/Dist-v0"),
        (None, "records no protocol hash"),
    ],
)
def test_a_result_under_another_protocol_is_refused(tmp_path, recorded, message):
    data = {"score": 0.5} if recorded is None else {"score": 0.5, "protocols": recorded}
    (tmp_path / "toy.json").write_text(json.dumps(data))
    with pytest.raises(ClaimsError, match=message.replace(".", r"\.").replace("(", r"\(")):
        row(claim(tmp_path, "a" * 64), root=tmp_path)


def test_a_matching_result_is_measured_and_a_missing_one_is_not_run(tmp_path):
    (tmp_path / "toy.json").write_text(json.dumps({"score": 0.5, "protocols": {"Toy/Dist-v0": "a" * 64}}))
    got = row(claim(tmp_path, "a" * 64), root=tmp_path)
    assert (got["ours"], got["scale"], got["verdict"]) == ("0.50", "1%", "direction only")
    (tmp_path / "toy.json").unlink()
    assert row(claim(tmp_path, "a" * 64), root=tmp_path)["verdict"] == "not run"
    assert "| Toy | method A beats method B |" in render([got])


CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
from claims_table import CLAIMS
from claims import main
assert len({c.key for c in CLAIMS}) == len(CLAIMS)
assert {c.paper for c in CLAIMS} == {"Leap", "CTS", "A-MAML"}
for c in CLAIMS:
    if c.result is not None:  # a measured claim checks at least one protocol hash
        assert c.measure is not None and c.protocols(), c.key
    else:  # a claim not run says what running it needs
        assert c.needs, c.key
sys.exit(main(["--check"]))
"""


def test_every_claim_checks_a_protocol_and_claims_md_is_what_the_results_give():
    """In a fresh interpreter (the installed suite's protocols, nothing other tests registered): every
    measured claim names the protocols its result must record, and the committed ledger is what the
    committed results give (never edited by hand)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(BENCHMARKS)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.parametrize("algo", ["reptile", "mtl"])
def test_a_run_trained_in_chunks_with_a_curve_is_the_uninterrupted_run(tmp_path, algo):
    """benchmarks/curves.py: the chunked run with its held-out curve gives bitwise the initialization of
    one meta_train call, scores the start and every chunk, and a second call resumes without training."""
    import metaenvs
    from agents import SupervisedAgent
    from baselines import make_meta_learner, meta_train

    train_with_curve = _load("curves").train_with_curve
    dist = metaenvs.make("Synthetic/Sinusoid-v0")
    scored = []

    def score(init):
        scored.append(init)
        return float(sum(t.double().sum() for t in init.values()))

    def agent():
        return SupervisedAgent.for_distribution(dist, seed=3)

    kw = {"meta_steps": 5, "meta_batch_size": 2, "seed": 1, "inner_steps": 3}
    init, curve = train_with_curve(
        agent, dist, lambda: make_meta_learner(algo), score, run_dir=tmp_path / "run", every=2, **kw
    )
    whole = meta_train(agent(), dist, make_meta_learner(algo), progress=False, **kw).init
    assert all(torch.equal(init[k], whole[k]) for k in whole)
    assert [p[0] for p in curve] == [0, 2, 4, 5] and curve[-1][1] == score(whole)
    assert all(b[2] >= a[2] for a, b in itertools.pairwise(curve))  # seconds of training so far
    n = len(scored)
    again, same = train_with_curve(
        agent, dist, lambda: make_meta_learner(algo), score, run_dir=tmp_path / "run", every=2, **kw
    )
    assert same == curve and len(scored) == n and all(torch.equal(again[k], whole[k]) for k in whole)


@pytest.mark.real_data("omniglot")
def test_a_scored_vision_run_is_the_uninterrupted_run(tmp_path):
    """run_with_curve scores each chunk with its own agent: scoring with the training agent left that
    agent adapted to the last val task, and the next chunk started its tasks from it (another run)."""
    from safetensors.torch import load_file

    import metaenvs
    from agents import make_agent
    from baselines import make_meta_learner, meta_train

    run_with_curve = _load("curves").run_with_curve
    dist = metaenvs.make("Vision/OmniglotAlphabets-v0", num_alphabets=2, augment=1)
    model = {"type": "conv4", "channels": 4}
    settings = {"meta_lr": 0.1, "meta_optimizer": "sgd"}
    quick = dist.protocol.customised(split="val", seeds=(0,), budget=3)
    record = run_with_curve(
        "leap", dist, 0, settings=settings, model_spec=model, meta_steps=4, meta_batch_size=2, every=2,
        protocol=quick, curve_protocol=quick, run_dir=tmp_path / "run", inner_steps=5,
    )  # fmt: skip
    whole = meta_train(
        make_agent(dist, seed=0, model_spec=model), dist, make_meta_learner("leap", **settings),
        meta_steps=4, meta_batch_size=2, seed=0, inner_steps=5, progress=False,
    ).init  # fmt: skip
    got = load_file(str(tmp_path / "run" / "train" / "init.safetensors"))
    assert all(torch.equal(got[k], whole[k]) for k in whole)
    assert [p[0] for p in record["meta_curve"]] == [0, 2, 4]
