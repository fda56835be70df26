"""The board: ranked tables, the index rebuilt from the files, the rendered page (also in headless
Chromium), verification by re-running, and the repository's shipped entries."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import leaderboard
import metaenvs
from metaenvs.aggregates import by_task, probability_of_improvement
from metaenvs.cli import main
from metaenvs.errors import SubmissionError
from metaenvs.protocol import sha256_json

from . import leaderboard_fixtures as fx
from .leaderboard_fixtures import TINY_JESTER, TINY_SINUSOID, load, make_init, mutated, snapshot

tiny_ids, tiny_results = fx.tiny_ids, fx.tiny_results  # module-scoped fixtures
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "leaderboard" / "board"


@pytest.fixture(scope="module")
def full_board(tiny_results, tmp_path_factory):
    """A board with the three tiny-sinusoid entries (two with stored initializations)."""
    root = tmp_path_factory.mktemp("board")
    ids = {}
    for name in ("a", "b", "scratch"):
        path, init = tiny_results[name]
        ids[name] = leaderboard.submit(path, root, init=init).entry_id
    return root, ids


def test_show_ranks_entries_with_cis_and_probability_of_improvement(full_board, capsys):
    root, _ = full_board
    (group,) = leaderboard.ranked_protocols(leaderboard.Board(root), TINY_SINUSOID)
    iqms = [row["iqm"] for row in group.rows]
    assert iqms == sorted(iqms) and len(iqms) == 3  # mse: lower is better
    top, nxt = group.rows[0], group.rows[1]
    expected = probability_of_improvement(
        by_task(_records(root, top["id"])), by_task(_records(root, nxt["id"])), higher_is_better=False
    )
    assert top["p_improve"] == expected and group.rows[-1]["p_improve"] is None
    assert main(["board", "show", "--board", str(root), "--dist", TINY_SINUSOID]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{TINY_SINUSOID}#default") and "IQM [95% CI]" in out and "P(>next)" in out
    lines = [line for line in out.splitlines() if line[:1].isdigit()]
    assert [line.split()[0] for line in lines] == ["1", "2", "3"]
    assert f"{top['iqm']:.4g} [{top['iqm_low']:.4g}, {top['iqm_high']:.4g}]" in lines[0]
    assert f"{top['p_improve']:.2f}" in lines[0] and lines[0].split()[-2] == "unverified"
    assert main(["board", "show", "--board", str(root), "--dist", "Synthetic/Sinusoid-v0"]) == 0
    assert "no entries yet" in capsys.readouterr().out
    missing = root.parent / "no-such-board"
    assert main(["board", "show", "--board", str(missing)]) == 2 and not missing.exists()
    assert "No board at" in capsys.readouterr().err


def _records(root: Path, entry_id: str) -> list[dict]:
    return load(root / "entries" / f"{entry_id}.json")["result"]["records"]


def test_index_is_a_cache_never_displayed(full_board, tmp_path):
    root, _ = full_board
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    before = leaderboard.format_tables(leaderboard.ranked_protocols(leaderboard.Board(copy)))
    (copy / "index.sqlite").unlink()
    assert leaderboard.format_tables(leaderboard.ranked_protocols(leaderboard.Board(copy))) == before
    (copy / "index.sqlite").write_bytes(b"not a database")
    assert leaderboard.format_tables(leaderboard.ranked_protocols(leaderboard.Board(copy))) == before
    # an index edited in place (its rows "improved") changes nothing that is shown
    shutil.copyfile(root / "index.sqlite", copy / "index.sqlite")
    with sqlite3.connect(copy / "index.sqlite") as con:
        con.execute("UPDATE entries SET iqm = -1.0, status = 'verified'")
    con.close()
    assert leaderboard.format_tables(leaderboard.ranked_protocols(leaderboard.Board(copy))) == before
    # submit rewrites it from the entry files
    leaderboard.Board(copy).rebuild_index()
    with sqlite3.connect(copy / "index.sqlite") as con:
        assert {r[0] for r in con.execute("SELECT status FROM entries")} == {"unverified"}
    con.close()
    # an entry file renamed to another id does not belong under that name: quarantined, others shown
    first = sorted((copy / "entries").glob("*.json"))[0]
    first.rename(copy / "entries" / "0000000000000000.json")
    groups = leaderboard.ranked_protocols(leaderboard.Board(copy))
    assert len(groups[0].rows) == 2
    ((name, reason),) = groups.quarantined
    assert name == "entries/0000000000000000.json" and "the id of this protocol" in reason


def test_render_writes_a_page_with_tables_and_plots(full_board, tmp_path):
    root, ids = full_board
    page = leaderboard.render_board(leaderboard.Board(root), tmp_path / "site")
    text = page.read_text()
    assert text.count("<table>") == 1 and text.count("<tr>") == 1 + 3
    assert text.count('src="data:image/png;base64,') == 3
    for alt in ("Aggregate scores with 95% CIs", "Performance profiles", "Held-out learning curves"):
        assert f'alt="{alt}"' in text
    assert all(entry_id in text for entry_id in ids.values())
    assert "python make_a.py" in text  # the recorded command


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_rendered_page_in_headless_chromium(full_board, tmp_path):
    root, _ = full_board
    page = leaderboard.render_board(leaderboard.Board(root), tmp_path / "site")
    shot = tmp_path / "shot.png"
    base = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1600",
    ]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<tr>") == 4 and dom.stdout.count("<img") == 3
    run = subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # matplotlib's first colours (C0 blue, C1 orange) show only if the embedded plots were decoded
    for colour in ((31, 119, 180), (255, 127, 14)):
        close = np.abs(pixels - np.array(colour)).sum(axis=2) < 30
        assert close.sum() > 200, f"no plot pixels of colour {colour} in the screenshot"
    assert (pixels.sum(axis=2) < 250).sum() > 500  # the dark text of the headings and the table


def test_verify_reruns_the_entry_and_marks_it(full_board, tmp_path, capsys):
    root, ids = full_board
    copy = tmp_path / "board"
    shutil.copytree(root, copy)
    assert main(["board", "verify", ids["a"], "--board", str(copy), "--no-progress"]) == 0
    assert "verified; 0 of 12 runs differ" in capsys.readouterr().out
    entry_file = copy / "entries" / f"{ids['a']}.json"
    assert entry_file.read_bytes() == (root / "entries" / f"{ids['a']}.json").read_bytes()  # never edited
    v = load(copy / "verifications" / f"{ids['a']}.json")
    assert v["verified"] is True and v["max_abs_diff"] == 0.0 and v["entry_id"] == ids["a"]
    assert v["command"].startswith("metaenvs board verify ") and v["versions"]["torch"] and v["hardware"]
    assert len(v["rerun_scores"]) == 12 and v["rerun_scores_sha256"] == sha256_json(v["rerun_scores"])
    (group,) = leaderboard.ranked_protocols(leaderboard.Board(copy), TINY_SINUSOID)
    row = next(r for r in group.rows if r["id"] == ids["a"])
    assert row["status"] == "verified" and leaderboard.ranking.verified_mark(row) == "yes"
    # scratch entries re-run from scratch
    assert leaderboard.verify_entry(leaderboard.Board(copy), ids["scratch"])["verified"] is True


def test_verify_catches_scores_that_were_changed_consistently(tiny_results, tmp_path, capsys):
    path, init = tiny_results["a"]

    def improve(d):  # better scores, with a summary recomputed to match: only a re-run can tell
        from metaenvs.metrics import mean_ci

        for r in d["records"]:
            r["final"] = r["scores"]["mse"] = r["final"] * 0.5
        m, h = mean_ci([r["final"] for r in d["records"]])
        d["summary"]["final"] = {"mean": m, "ci95": h, "n": len(d["records"])}

    forged = mutated(path, tmp_path / "forged.json", improve)
    board = tmp_path / "board"
    sub = leaderboard.submit(forged, board, init=init)
    assert main(["board", "verify", sub.entry_id, "--board", str(board), "--no-progress"]) == 1
    assert "NOT verified; 12 of 12 runs differ" in capsys.readouterr().out
    v = load(board / "verifications" / f"{sub.entry_id}.json")
    assert v["verified"] is False and v["iqm_rerun"] == pytest.approx(2 * v["iqm_submitted"])
    # shown as FAILED, below the ranking and not ranked, in show and on the page
    (group,) = leaderboard.ranked_protocols(leaderboard.Board(board))
    assert group.rows == [] and [r["id"] for r in group.failed] == [sub.entry_id]
    text = leaderboard.format_tables([group])
    assert "failed verification (re-run disagrees; not ranked)" in text and "FAILED" in text
    page = leaderboard.render_board(leaderboard.Board(board), tmp_path / "site").read_text()
    assert ">FAILED<" in page and "Failed verification" in page


def test_verify_checks_the_initialization_sha(full_board, tiny_results, tmp_path):
    root, ids = full_board
    copy = tmp_path / "board"
    shutil.copytree(root, copy)
    board = leaderboard.Board(copy)
    before = snapshot(copy)
    with pytest.raises(SubmissionError, match="was evaluated from"):
        leaderboard.verify_entry(board, ids["a"], init_file=tiny_results["b"][1])
    stored = next((copy / "inits").glob(f"{load(tiny_results['a'][0])['init']['sha256']}.safetensors"))
    stored.unlink()  # an entry without its initialization cannot be re-validated: it is refused
    with pytest.raises(SubmissionError, match=r"safetensors: no such file"):
        leaderboard.verify_entry(board, ids["a"])
    assert {k: v for k, v in snapshot(copy).items() if not k.startswith("inits/")} == {
        k: v for k, v in before.items() if not k.startswith("inits/")
    }


def test_verify_a_ratings_entry(tiny_ids, tmp_path):
    dist = metaenvs.make(TINY_JESTER)
    init = make_init(dist, tmp_path / "init.safetensors", seed=5, algorithm="jester-test")
    from agents import make_agent
    from metaenvs.evaluation import evaluate

    result = tmp_path / "result.json"
    evaluate(make_agent(dist), dist, init, out=result)
    board = leaderboard.Board(tmp_path / "board")
    sub = leaderboard.submit(result, board, init=init)
    assert sub.aggregates["score"] == "nrmse" and sub.aggregates["n_runs"] == 2 * 5
    v = leaderboard.verify_entry(board, sub.entry_id)
    assert v["verified"] is True and v["runs_compared"] == 10


# ----- the repository's own board ----------------------------------------------------------------------
def _shipped_entries() -> list[Path]:
    return sorted((SHIPPED / "entries").glob("*.json")) if (SHIPPED / "entries").is_dir() else []


# The ratings and Omniglot entries are valid on the real data sets' splits only.
@pytest.mark.real_data("jester1", "movielens100k", "omniglot")
def test_shipped_entries_are_valid_and_record_their_commands(tmp_path):
    entries = _shipped_entries()
    assert entries, "leaderboard/board/entries/ ships the baseline entries"
    copy = tmp_path / "board"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns("index.sqlite"))
    groups = leaderboard.ranked_protocols(leaderboard.Board(copy))  # re-validates every entry file
    assert groups.quarantined == []
    assert {g.dist_id for g in groups} >= {"Synthetic/Sinusoid-v0", "Ratings/Jester1_10shot15val-v0"}
    for group in groups:  # every supervised entry is verified (RL entries may await a re-run of hours)
        if not group.dist_id.startswith(("Atari/", "MetaWorld/")):
            assert {r["status"] for r in group.rows} == {"verified"} and not group.failed, group.dist_id
    # every family with a shipped result has its trivial baselines in the same table
    algorithms = {g.dist_id: {r["algorithm"] for r in g.rows} for g in groups}
    assert "baseline: item_mean_user_offset" in algorithms["Ratings/Jester1_10shot15val-v0"]
    assert "baseline: mean_function" in algorithms["Synthetic/Sinusoid-v0"]
    for path in entries:
        entry = json.loads(path.read_text())
        commands = entry["result"]["commands"]
        # The CLI's commands, or one committed benchmark script that meta-trains and evaluates
        # (benchmarks/metaworld.py: its Leap settings have no CLI flag).
        script = commands[-1].split()[1] if commands[-1].startswith("python benchmarks/") else None
        assert script is None or (ROOT / script).is_file()
        assert script or commands[-1].startswith("metaenvs evaluate ")
        assert entry["submit_command"].startswith("metaenvs submit ")
        assert entry["result"]["protocol_hash"] == metaenvs.make(entry["result"]["dist_id"]).protocol.hash
        sha = entry["result"]["init"]["sha256"]
        if sha is None:  # scratch: every seed from its own fresh random initialization
            assert len(commands) == 1 and "--init" not in commands[0]
            continue
        # meta-trained by `metaenvs train`, or by a committed benchmark (the ratings Table 2 inits)
        trainer = commands[0].split()[1] if commands[0].startswith("python benchmarks/") else None
        assert script or (trainer and (ROOT / trainer).is_file()) or commands[0].startswith("metaenvs train ")
        init = SHIPPED / "inits" / f"{sha}.safetensors"
        assert init.is_file() and init.stat().st_size < 3_000_000  # Atari's Mnih encoder: 2.7 MB
    used = {json.loads(p.read_text())["result"]["init"]["sha256"] for p in entries}
    assert {p.name.split(".")[0] for p in (SHIPPED / "inits").iterdir()} <= used  # no stray files


CROSS_THREADS = """
import json, sys
import torch
torch.set_num_threads(int(sys.argv[2]))
import leaderboard
record = leaderboard.verify_entry(leaderboard.Board(sys.argv[1]), sys.argv[3], command="cross-thread test")
print(json.dumps({"verified": record["verified"], "threads": record["hardware"]["torch_threads"],
                  "differing": record["runs_differing"], "max_abs_diff": record["max_abs_diff"]}))
"""


def test_a_shipped_entry_reverifies_with_another_thread_count_in_a_fresh_process(tmp_path):
    import os
    import subprocess
    import sys

    copy = tmp_path / "board"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns("index.sqlite"))
    reptile = next(
        p.stem
        for p in _shipped_entries()
        if (json.loads(p.read_text())["result"]["init"].get("card") or {}).get("algorithm") == "reptile"
        and json.loads(p.read_text())["result"]["dist_id"] == "Synthetic/Sinusoid-v0"
    )
    submitted_threads = json.loads((SHIPPED / "entries" / f"{reptile}.json").read_text())["result"][
        "hardware"
    ]
    threads = 2 if submitted_threads["torch_threads"] == 1 else 1
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", CROSS_THREADS, str(copy), str(threads), reptile],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["threads"] == threads != submitted_threads["torch_threads"]
    assert outcome["verified"], (
        outcome
    )  # within Protocol.verify_tolerance, though runs differ in their last bits
    shipped = json.loads((SHIPPED / "entries" / f"{reptile}.json").read_text())
    assert shipped == json.loads(
        (copy / "entries" / f"{reptile}.json").read_text()
    )  # the entry is never edited
