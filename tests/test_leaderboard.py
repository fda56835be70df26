"""Leaderboard submissions: the result schema, validation, recomputed aggregates, and every bad input of
issue #7's security list (each refusal leaves the board byte for byte as it was). The refusals of
issue #13 (recipe, scores, inits, board files) are in tests/test_board_trust.py and test_board_layouts.py."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch

import leaderboard
import metaenvs
from leaderboard.schema import MAX_RESULT_BYTES
from metaenvs.aggregates import by_task, interval, iqm
from metaenvs.cli import main
from metaenvs.errors import SubmissionError
from metaenvs.evaluation import RESULT_SCHEMA_VERSION
from metaenvs.io import sha256_file

from . import leaderboard_fixtures as fx
from .leaderboard_fixtures import TINY_SINUSOID, load, mutated, refused, snapshot

tiny_ids, tiny_results = fx.tiny_ids, fx.tiny_results  # module-scoped fixtures


@pytest.fixture
def board(tmp_path, tiny_results):
    """A board that already holds one entry (result "b" with its initialization), so that refusals
    are seen to leave existing files, the stored initialization and the index untouched."""
    path, init = tiny_results["b"]
    leaderboard.submit(path, tmp_path / "board", init=init)
    return tmp_path / "board"


# ----- the schema and what evaluate writes ------------------------------------------------------------
def test_evaluate_writes_a_result_that_conforms_to_the_schema(tiny_results):
    path, init = tiny_results["a"]
    data = load(path)
    jsonschema.Draft202012Validator(leaderboard.result_schema()).validate(data)
    dist = metaenvs.make(TINY_SINUSOID)
    assert data["schema_version"] == RESULT_SCHEMA_VERSION == 2
    assert data["suite_version"] == metaenvs.__version__ and data["dist_seed"] == 0
    assert data["protocol_id"] == dist.protocol.id and data["protocol_hash"] == dist.protocol.hash
    assert data["split_hash"] == dist.split_hash() and data["seeds"] == [0, 1, 2]
    assert data["init"]["sha256"] == sha256_file(init) and data["init"]["card"]["algorithm"] == "algo-a"
    assert data["compute"]["total_steps"] == 32 * 12 and data["hardware"]["cpu_count"] >= 1
    assert data["commands"] == ["python make_a.py"] and "normalized_final" not in data["records"][0]
    assert load(tiny_results["scratch"][0])["submitter"] == "Ada"


def test_schema_file_ships_as_package_data():
    from importlib import resources

    assert resources.files("leaderboard").joinpath("result.schema.json").is_file()
    schema = leaderboard.result_schema()
    assert schema["properties"]["schema_version"]["const"] == RESULT_SCHEMA_VERSION


# ----- a good submission -------------------------------------------------------------------------------
def test_submit_stores_one_entry_with_recomputed_aggregates(tiny_results, board):
    path, init = tiny_results["a"]
    sub = leaderboard.submit(path, board, init=init)
    entry = json.loads((board / "entries" / f"{sub.entry_id}.json").read_text())
    scores = by_task(load(path)["records"])
    assert entry["aggregates"]["iqm"] == interval(scores, "iqm", resample_tasks=True)  # sampled tasks
    assert entry["aggregates"]["iqm"]["estimate"] == iqm(np.concatenate(list(scores.values())))
    assert entry["aggregates"]["n_runs"] == 12 and entry["aggregates"]["n_tasks"] == 4
    assert (board / "inits" / f"{sha256_file(init)}.safetensors").read_bytes() == init.read_bytes()
    assert "curve" not in entry["result"]["records"][0] and len(entry["curves"]["mean"]) == 33
    assert (board / "index.sqlite").is_file()


def test_aggregates_ignore_what_was_reported_and_are_reproducible(tiny_results, tmp_path):
    path, init = tiny_results["a"]
    no_summary = mutated(path, tmp_path / "r.json", lambda d: d.pop("summary"))
    a = leaderboard.load_submission(path, init=init).aggregates
    b = leaderboard.load_submission(no_summary, init=init).aggregates
    assert a == b  # bitwise: a fixed bootstrap seed, nothing taken from the submission


def test_sampled_held_out_tasks_are_bootstrapped_but_atari_games_are_not():
    from leaderboard.validate import tasks_are_a_sample

    assert tasks_are_a_sample("Synthetic/Sinusoid-v0")
    assert tasks_are_a_sample("Ratings/Jester1_10shot15val-v0")
    assert not tasks_are_a_sample("Atari/LeapPool-v0")
    assert not tasks_are_a_sample("Control/ClassicControl-v1")


# ----- issue #7's security list: one test each ---------------------------------------------------------
def test_refuses_malformed_json(board, tmp_path, tiny_results):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 2, "records": [1, 2,')
    (problem,) = refused(board, bad)
    assert "malformed JSON at line 1" in problem
    bad.write_text('{"schema_version": 2, "schema_version": 2}')
    assert "duplicate key 'schema_version'" in refused(board, bad)[0]


def test_refuses_wrong_schema_version(board, tmp_path, tiny_results):
    path = mutated(tiny_results["a"][0], tmp_path / "r.json", lambda d: d.update(schema_version=1))
    (problem,) = refused(board, path)
    assert "schema_version 1 is not supported" in problem and f"version {RESULT_SCHEMA_VERSION}" in problem


@pytest.mark.parametrize("what", ["task", "seed"])
def test_refuses_missing_task_or_seed(board, tmp_path, tiny_results, what):
    def drop(d):
        if what == "task":
            d["records"] = [r for r in d["records"] if r["task_id"] != "test/0002"]
        else:  # two of three seeds of one task: below the protocol's min_seeds (3)
            d["records"] = [r for r in d["records"] if not (r["task_id"] == "test/0001" and r["seed"] > 0)]
        d.pop("summary")

    problems = refused(board, mutated(tiny_results["a"][0], tmp_path / "r.json", drop), tiny_results["a"][1])
    expected = (
        "missing held-out tasks (1 of 4): test/0002"
        if what == "task"
        else "tasks missing some of the protocol's seeds [0, 1, 2]: test/0001 (seeds [1, 2])"
    )
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_refuses_nan_and_inf(board, tmp_path, tiny_results, token):
    text = tiny_results["a"][0].read_text()
    data = json.loads(text)
    data["records"][5]["final"] = 12345.678
    data["records"][5]["scores"]["mse"] = 12345.678
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(data).replace("12345.678", token))
    problems = refused(board, bad)
    assert "records/5/final: NaN or Inf is not a score; every value must be finite." in problems
    assert "records/5/scores/mse: NaN or Inf is not a score; every value must be finite." in problems


@pytest.mark.parametrize("field", ["protocol_hash", "split_hash"])
def test_refuses_protocol_or_split_hash_mismatch(board, tmp_path, tiny_results, field):
    path = mutated(tiny_results["a"][0], tmp_path / "r.json", lambda d: d.update({field: "0" * 64}))
    problems = refused(board, path)
    assert any(
        p.startswith(f"{field} 0000000000000000... does not match the installed suite") for p in problems
    )
    # a custom protocol (here a smaller budget) hashes differently, and is refused the same way
    dist = metaenvs.make(TINY_SINUSOID)
    custom = tmp_path / "custom.json"
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    evaluate(make_agent(dist), dist, None, dist.protocol.customised(budget=2), out=custom)
    assert any("protocol_hash" in p for p in refused(board, custom))


def test_refuses_tampered_aggregates(board, tmp_path, tiny_results):
    def better(d):
        d["summary"]["final"]["mean"]["estimate"] *= 0.5

    init = tiny_results["a"][1]
    problems = refused(board, mutated(tiny_results["a"][0], tmp_path / "r.json", better), init)
    assert any(p.startswith("summary.final: reported") and "never trusted" in p for p in problems)

    def extra(d):
        d["summary"]["iqm"] = {"estimate": 0.0}

    problems = refused(board, mutated(tiny_results["a"][0], tmp_path / "x.json", extra), init)
    assert any("the board computes its own" in p for p in problems)
    # an entry file edited after the fact is set aside when the board is shown
    sub = leaderboard.submit(tiny_results["a"][0], board, init=tiny_results["a"][1])
    entry_file = board / "entries" / f"{sub.entry_id}.json"
    entry = json.loads(entry_file.read_text())
    entry["aggregates"]["iqm"]["estimate"] = 0.001
    entry_file.write_text(json.dumps(entry))
    groups = leaderboard.ranked_protocols(leaderboard.Board(board))
    assert sub.entry_id not in {r["id"] for g in groups for r in g.rows}
    ((name, reason),) = groups.quarantined
    assert (
        name == f"entries/{sub.entry_id}.json"
        and "stored aggregates are not those of its raw scores" in reason
    )


def test_refuses_init_whose_sha_does_not_match_its_file(board, tmp_path, tiny_results):
    path, _ = tiny_results["a"]
    other_init = tiny_results["b"][1]  # a valid safetensors file, but not the one evaluated
    (problem,) = refused(board, path, init=other_init)
    assert problem.startswith("init: sha256 of") and "submit the initialization the result names" in problem
    # and a card that disagrees with the result's sha
    bad = mutated(path, tmp_path / "r.json", lambda d: d["init"]["card"].update(sha256="f" * 64))
    assert "init: the card's sha256 is not the initialization's sha256." in refused(board, bad)


def test_refuses_oversized_file_before_parsing(board, tmp_path, tiny_results, monkeypatch):
    import leaderboard.schema as schema

    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.write(b"{" + b" " * MAX_RESULT_BYTES + b"}")

    def no_parsing(*args, **kwargs):
        raise AssertionError("an oversized file was parsed")

    monkeypatch.setattr(schema.json, "loads", no_parsing)
    (problem,) = refused(board, big)
    assert f"over the size limit of {MAX_RESULT_BYTES} bytes" in problem


@pytest.mark.parametrize(
    "field, value",
    [
        ("dist_id", "Synthetic/../../etc/passwd-v0"),
        ("dist_id", "/etc/passwd"),
        ("task_id", "../../../etc/passwd"),
        ("task_id", "/abs/test/0001"),
        ("submitter", "../../leaderboard/board/entries/x"),
        ("submitter", "/etc/passwd"),
        ("submitter", "nul\x00byte"),
    ],
)
def test_refuses_path_traversal_in_ids_and_names(board, tmp_path, tiny_results, field, value):
    def change(d):
        if field == "task_id":
            d["records"][0]["task_id"] = value
        else:
            d[field] = value

    problems = refused(board, mutated(tiny_results["a"][0], tmp_path / "r.json", change))
    where = "records/0/task_id" if field == "task_id" else field
    assert any(p.startswith(f"{where}: ") and "is not allowed here" in p for p in problems), problems


def test_entry_ids_are_never_paths(board, tiny_results):
    b = leaderboard.Board(board)
    for bad in ("../../etc/passwd", "/etc/passwd", "0123456789abcdef/..", "abc\x00def", "ABCDEF0123456789"):
        with pytest.raises(SubmissionError, match="not an entry id"):
            b.load_entry(bad)
    assert b.entry_names() == [
        f"{leaderboard.load_submission(tiny_results['b'][0], init=tiny_results['b'][1]).entry_id}.json"
    ]


def test_html_and_script_injection_in_names_is_escaped(board, tmp_path, tiny_results):
    evil = '<script>alert("x")<img src=x onerror=alert(1)>'
    path = mutated(tiny_results["a"][0], tmp_path / "r.json", lambda d: d.update(submitter=evil))
    leaderboard.submit(path, board, init=tiny_results["a"][1])
    page = leaderboard.render_board(leaderboard.Board(board), tmp_path / "site").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;img src=x onerror=alert(1)&gt;" in page
    assert "script-src" not in page and "default-src 'none'" in page  # CSP: no scripts at all
    bad_url = mutated(
        tiny_results["b"][0], tmp_path / "u.json", lambda d: d.update(code_url="javascript:alert(1)")
    )
    assert any(p.startswith("code_url: ") for p in refused(board, bad_url))


def test_refuses_pickle_and_other_non_safetensors_inits(board, tmp_path, tiny_results):
    path = tiny_results["a"][0]
    pickled = tmp_path / "init.pt"
    torch.save({"w": torch.zeros(2)}, pickled)  # a torch zip with a pickle inside
    raw_pickle = tmp_path / "init.pkl"
    raw_pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 32)
    for bad in (pickled, raw_pickle):
        # even when the result names exactly this file's sha256, it is never unpickled
        result = mutated(path, tmp_path / "r.json", lambda d, b=bad: _point_init_at(d, sha256_file(b)))
        (problem,) = refused(board, result, init=bad)
        assert problem.startswith("init: ") and "pickle" in problem


def _point_init_at(data, sha):
    data["init"]["sha256"] = sha
    data["init"]["card"]["sha256"] = sha


def test_refuses_duplicate_submission(board, tiny_results):
    path, init = tiny_results["a"]
    first = leaderboard.submit(path, board, init=init)
    (problem,) = refused(board, path, init=init)
    assert problem.startswith(f"duplicate: entry {first.entry_id} already holds initialization")
    scratch = tiny_results["scratch"][0]
    leaderboard.submit(scratch, board)
    assert "already holds training from scratch" in refused(board, scratch)[0]


# ----- the command line ------------------------------------------------------------------------------------
def test_cli_submit_prints_one_line_per_problem(board, tmp_path, tiny_results, capsys):
    def break_two_things(d):
        d["split_hash"] = "1" * 64
        d["seeds"] = [0, 1]

    path = mutated(tiny_results["a"][0], tmp_path / "r.json", break_two_things)
    init = str(tiny_results["a"][1])
    before = snapshot(board)
    assert main(["submit", str(path), "--board", str(board), "--init", init]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("metaenvs submit: refused: ") for line in err)
    assert snapshot(board) == before
    assert main(["submit", str(tiny_results["a"][0]), "--board", str(board), "--init", init]) == 0
    out = capsys.readouterr().out
    assert "entry " in out and "iqm of mse" in out and "(recomputed)" in out
    entry_id = leaderboard.load_submission(tiny_results["a"][0], init=init).entry_id
    entry = json.loads((board / "entries" / f"{entry_id}.json").read_text())
    assert entry["submit_command"].startswith("metaenvs submit ")


def test_refusals_list_every_problem_at_once(board, tmp_path, tiny_results):
    def many(d):
        d["records"][0]["final"] = "oops"
        d["records"][1]["seed"] = -1
        d["hardware"]["cpu_count"] = 0

    problems = refused(board, mutated(tiny_results["a"][0], tmp_path / "r.json", many))
    assert len(problems) == 3 and problems[0].startswith("hardware/cpu_count")
