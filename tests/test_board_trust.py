"""Issue #13's wrong data accepted: off-recipe results, impossible scores, bad inits, squatting, and board
files taken at their word. One test per item; each refusal leaves the board byte for byte unchanged."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

import leaderboard
import metaenvs
from leaderboard.checks import score_problems
from leaderboard.inits import canonical_sha256
from metaenvs.io import sha256_file
from metaenvs.metrics import score_range

from . import leaderboard_fixtures as fx
from .leaderboard_fixtures import TINY_SINUSOID, load, mutated, point_init_at, refused, write

tiny_ids, tiny_results = fx.tiny_ids, fx.tiny_results  # module-scoped fixtures


@pytest.fixture
def board(tmp_path, tiny_results):
    """A board that already holds entry "b" (with its initialization)."""
    path, init = tiny_results["b"]
    leaderboard.submit(path, tmp_path / "board", init=init)
    return tmp_path / "board"


def _no_summary(change):
    def apply(d):
        change(d)
        d.pop("summary")

    return apply


# ----- item 1: the recipe -------------------------------------------------------------------------------
def test_refuses_an_agent_off_the_protocols_recipe(board, tmp_path, tiny_results):
    path, init = tiny_results["a"]

    def off_recipe(d):
        d["agent"].update(lr=0.05, optimizer="adam")
        d["agent"]["model_spec"]["hidden"] = [64, 64]
        d["agent"].pop("momentum")

    problems = refused(board, mutated(path, tmp_path / "r.json", off_recipe), init)
    assert any(p.startswith("agent.lr: the protocol's recipe has 0.02, the run used 0.05") for p in problems)
    assert any(p.startswith("agent.optimizer: the protocol's recipe has 'sgd'") for p in problems)
    assert any(p.startswith("agent.model_spec.hidden: ") for p in problems)
    assert any(p.startswith("agent.momentum: ") and "did not record it" in p for p in problems)
    # execution-only settings are not part of the recipe
    batched = mutated(path, tmp_path / "b.json", lambda d: d["agent"].update(batched=True))
    assert leaderboard.load_submission(batched, init=init).aggregates


def test_custom_protocols_are_never_ranked(board, tmp_path, tiny_results):
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    dist = metaenvs.make(TINY_SINUSOID)
    custom = tmp_path / "custom.json"
    evaluate(make_agent(dist), dist, None, dist.protocol.customised(seeds=(0, 1)), out=custom)
    assert any("custom protocols are never ranked" in p for p in refused(board, custom))


# ----- item 2: scores ------------------------------------------------------------------------------------
def test_refuses_scores_outside_the_metrics_range(board, tmp_path, tiny_results):
    path, init = tiny_results["a"]

    def negative(d):
        for r in d["records"]:
            r["final"] = r["scores"]["mse"] = -1.0

    problems = refused(board, mutated(path, tmp_path / "r.json", _no_summary(negative)), init)
    assert any("final is outside the valid range [0, inf] of mse" in p for p in problems)
    assert any("scores['mse'] is outside its valid range [0, inf]" in p for p in problems)

    def negative_curve(d):
        d["records"][3]["curve"]["values"][5] = -0.5

    problems = refused(board, mutated(path, tmp_path / "c.json", negative_curve), init)
    assert any(p.startswith("records 3: curve values are outside the valid range [0, inf]") for p in problems)
    assert score_range("accuracy") == score_range("success_rate") == (0.0, 1.0)
    assert score_range("return") == (float("-inf"), float("inf"))
    record = {"final": 1.5, "auc": 0.1, "scores": {"accuracy": 1.5}}
    assert any(
        "outside the valid range [0, 1] of accuracy" in p for p in score_problems([record], "accuracy")
    )


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "1" + "0" * 5000, "1"])
def test_scores_must_be_finite_floats(board, tmp_path, tiny_results, literal):
    path, init = tiny_results["a"]
    data = load(path)
    data["records"][2]["final"] = data["records"][2]["scores"]["mse"] = 4242.4242
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(data).replace("4242.4242", literal))
    problems = refused(board, bad, init)
    if literal == "1":
        assert any(p.startswith("records 2: final is not a float") for p in problems)
    else:
        assert problems == [
            f"{bad}: an integer of {len(literal)} digits: numbers in a result are floats "
            "(scores) or small integers (seeds, counts) of at most 30 digits."
        ]


def test_every_held_out_task_once_for_every_protocol_seed(board, tmp_path, tiny_results):
    path, init = tiny_results["a"]

    def best_over_worst(d):  # the best run copied over the worst: one (task, seed) twice, another gone
        records = d["records"]
        best = min(range(len(records)), key=lambda i: records[i]["final"])
        worst = max(range(len(records)), key=lambda i: records[i]["final"])
        records[worst] = dict(records[best])

    problems = refused(board, mutated(path, tmp_path / "r.json", _no_summary(best_over_worst)), init)
    assert any(p.startswith("records repeat a task and seed: ") for p in problems)
    assert any(p.startswith("tasks missing some of the protocol's seeds") for p in problems)

    def drop_last_seed(d):  # min_seeds would allow 3 seeds of 3, but not 2: every protocol seed counts
        d["records"] = [r for r in d["records"] if r["seed"] != 2]

    problems = refused(board, mutated(path, tmp_path / "s.json", _no_summary(drop_last_seed)), init)
    assert any(
        "tasks missing some of the protocol's seeds [0, 1, 2]: test/0000 (seeds [2])" in p for p in problems
    )


# ----- item 3: initializations -------------------------------------------------------------------------
def _bad_init(tmp_path, name, tensors, metadata=None):
    path = tmp_path / f"{name}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


def _submit_with(board, tmp_path, tiny_results, init_file):
    result = mutated(
        tiny_results["a"][0], tmp_path / "r.json", lambda d: point_init_at(d, sha256_file(init_file))
    )
    return refused(board, result, init_file)


def _good_tensors(tiny_results):
    from safetensors.torch import load_file

    return load_file(str(tiny_results["a"][1]))


@pytest.mark.parametrize("flaw", ["nan", "inf", "shape", "none", "evil name", "float64"])
def test_refuses_inits_that_do_not_load_into_the_protocols_model(board, tmp_path, tiny_results, flaw):
    tensors = _good_tensors(tiny_results)
    name = sorted(tensors)[0]
    if flaw in ("nan", "inf"):
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float(flaw)
        expected = f"init: tensors holding NaN or Inf: '{name}'"
    elif flaw == "shape":
        tensors[name] = torch.zeros(3, 3)
        expected = f"init: shapes unlike the protocol's model: {name} (3, 3)"
    elif flaw == "none":
        tensors = {}
        expected = "init: the initialization holds no tensors"
    elif flaw == "evil name":
        tensors["../../evil"] = torch.zeros(1)
        expected = "init: tensors the protocol's model has no parameter for: '../../evil'"
    else:
        tensors = {k: v.double() for k, v in tensors.items()}
        expected = "init: dtypes unlike the protocol's model"
    problems = _submit_with(
        board, tmp_path, tiny_results, _bad_init(tmp_path, flaw.replace(" ", "_"), tensors)
    )
    assert any(p.startswith(expected) for p in problems), problems
    assert not list((board / "inits").glob("*evil*"))


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.pop("dist_id"), "init: the card records no dist_id"),
        (lambda c: c.pop("split_hash"), "init: the card records no split_hash"),
        (lambda c: c.pop("protocol_id"), "init: the card records no protocol_id"),
        (lambda c: c.update(dist_id="Synthetic/Alpine-v0"), "meta-trained on Synthetic/Alpine-v0, not on"),
        (lambda c: c.update(split_hash="0" * 64), "meta-trained under another split"),
        (lambda c: c.update(protocol_id="Synthetic/Alpine-v0#default"), "init: the card's protocol_id"),
    ],
)
def test_the_self_reported_card_must_name_this_distribution_split_and_protocol(
    board, tmp_path, tiny_results, edit, expected
):
    path, init = tiny_results["a"]
    problems = refused(board, mutated(path, tmp_path / "r.json", lambda d: edit(d["init"]["card"])), init)
    assert any(expected in p for p in problems), problems


def test_an_entry_is_keyed_by_its_canonical_tensors(board, tmp_path, tiny_results):
    path, init = tiny_results["a"]
    first = leaderboard.submit(path, board, init=init)
    tensors = _good_tensors(tiny_results)
    assert first.init_key == canonical_sha256(tensors) != sha256_file(init)
    assert canonical_sha256({k: v.double() for k, v in tensors.items()}) == first.init_key
    # the same weights saved again with other metadata: another file sha256, the same entry
    again = _bad_init(tmp_path, "again", tensors, metadata={"note": "re-saved"})
    assert sha256_file(again) != sha256_file(init)
    card = {**load(path)["init"]["card"], "sha256": sha256_file(again)}
    write(again.with_suffix(".json"), card)
    (problem,) = _submit_with(board, tmp_path, tiny_results, again)
    assert problem.startswith(f"duplicate: entry {first.entry_id} already holds initialization")


def test_a_file_init_result_without_its_file_is_refused_so_it_cannot_squat(board, tmp_path, tiny_results):
    path, init = tiny_results["a"]
    problems = refused(board, path)
    assert any("submit it with --init FILE" in p for p in problems)
    assert leaderboard.submit(path, board, init=init).entry_id  # the owner's genuine submission goes in
    problems = refused(board, tiny_results["scratch"][0], init)
    assert "--init was given but the result was evaluated from scratch" in problems[0]


# ----- item 5: board files are claims ------------------------------------------------------------------
def _one_entry(board):
    (path,) = sorted((board / "entries").glob("*.json"))
    return path, json.loads(path.read_text())


def test_a_hand_placed_verification_never_shows_as_verified(board, tmp_path):
    _, entry = _one_entry(board)
    b = leaderboard.Board(board)
    (b.verifications_dir).mkdir()
    forged = {"verified": True, "entry_id": entry["id"]}
    write(b.verification_path(entry["id"]), forged)
    groups = leaderboard.ranked_protocols(b)
    assert groups[0].rows[0]["status"] == "unverified"
    assert groups.quarantined[0][0] == f"verifications/{entry['id']}.json"
    # a complete record whose claims do not follow from the scores it lists
    from leaderboard.verification import make_record

    rerun = [dict(r, final=r["final"] * 0.5) for r in entry["result"]["records"]]
    facts = {"verified_at": "now", "wall_seconds": 1.0, "versions": {}, "hardware": {}, "command": "x"}
    record = make_record(
        entry,
        rerun,
        iqm_rerun=0.0,
        rerun={
            "protocol_hash": entry["result"]["protocol_hash"],
            "init_sha256": entry["result"]["init"]["sha256"],
        },
        **facts,
    )
    assert record["verified"] is False
    write(b.verification_path(entry["id"]), {**record, "verified": True, "runs_differing": 0})
    groups = leaderboard.ranked_protocols(b)
    assert groups[0].rows[0]["status"] == "unverified" and "do not follow" in groups.quarantined[0][1]
    write(b.verification_path(entry["id"]), record)  # consistent, and the re-run disagrees: FAILED
    groups = leaderboard.ranked_protocols(b)
    assert groups[0].rows == [] and groups[0].failed[0]["status"] == "FAILED" and not groups.quarantined
    # a record of the same entry made before its result was replaced is stale
    write(b.verification_path(entry["id"]), {**record, "result_sha256": "1" * 64})
    assert "stale or foreign" in leaderboard.ranked_protocols(b).quarantined[0][1]


def test_fabricated_entries_are_quarantined_or_shown_unverified(board, tmp_path):
    from leaderboard.validate import recompute_aggregates

    path, entry = _one_entry(board)
    protocol = metaenvs.make(TINY_SINUSOID).protocol
    forged = json.loads(json.dumps(entry))
    for r in forged["result"]["records"]:
        r["final"] = r["scores"]["mse"] = r["scores"]["loss"] = r["final"] * 0.01
    forged["result"].pop("summary")
    forged["aggregates"], forged["raw_aggregates"] = recompute_aggregates(
        forged["result"]["records"], protocol
    )
    write(path, forged)  # consistent with its real initialization: accepted, but only as unverified
    (group,) = leaderboard.ranked_protocols(leaderboard.Board(board))
    assert group.rows[0]["status"] == "unverified"
    forged["result"]["init"]["sha256"] = forged["result"]["init"]["card"]["sha256"] = "ab" * 32  # made up
    write(path, forged)
    groups = leaderboard.ranked_protocols(leaderboard.Board(board))
    assert list(groups) == [] and "no such file" in groups.quarantined[0][1]


def test_an_entry_for_an_unregistered_distribution_gets_no_table(board, tmp_path, tiny_results):
    copy = tmp_path / "copy"
    shutil.copytree(board, copy)
    path, entry = _one_entry(copy)
    entry["result"]["dist_id"] = entry["result"]["spec"]["id"] = "Test/NotRegistered-v0"
    write(path, entry)
    groups = leaderboard.ranked_protocols(leaderboard.Board(copy))
    assert list(groups) == [] and "is not registered in the installed suite" in groups.quarantined[0][1]
