"""Board layouts that once crashed or hung `board show`, `render` and `submit` (issue #13, item 12):
every one ends in a clean message, within a time limit, with the bad file named; a refused submission
leaves the board byte for byte unchanged, and one bad file never hides the good entries."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import leaderboard
from metaenvs.cli import main

from . import leaderboard_fixtures as fx
from .leaderboard_fixtures import TINY_SINUSOID, no_hang, snapshot

tiny_ids, tiny_results = fx.tiny_ids, fx.tiny_results  # module-scoped fixtures
BAD = "0123456789abcdef"


@pytest.fixture(scope="module")
def good_board(tiny_results, tmp_path_factory):
    """A board holding entry "b" (with its initialization) and the scratch entry."""
    root = tmp_path_factory.mktemp("layouts") / "board"
    ids = {}
    for name in ("b", "scratch"):
        path, init = tiny_results[name]
        ids[name] = leaderboard.submit(path, root, init=init).entry_id
    return root, ids


def _entry(board: Path, entry_id: str) -> dict:
    return json.loads((board / "entries" / f"{entry_id}.json").read_text())


def _rewrite(board: Path, entry_id: str, change) -> None:
    entry = _entry(board, entry_id)
    change(entry)
    (board / "entries" / f"{entry_id}.json").write_text(json.dumps(entry))


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _verification(board: Path, entry_id: str, content: str) -> None:
    (board / "verifications").mkdir(exist_ok=True)
    (board / "verifications" / f"{entry_id}.json").write_text(content)


# name -> (make the layout, text expected among the quarantine reasons, or None when nothing is set aside)
LAYOUTS = {
    "entry is a folder": (lambda b, ids: (b / "entries" / f"{BAD}.json").mkdir(), "is a folder"),
    "entry is a FIFO": (lambda b, ids: _fifo(b / "entries" / f"{BAD}.json"), "is a FIFO"),
    "entry links to /dev/zero": (
        lambda b, ids: (b / "entries" / f"{BAD}.json").symlink_to("/dev/zero"),
        "is a symbolic link",
    ),
    "entry links to a good entry elsewhere": (
        lambda b, ids: (b / "entries" / f"{BAD}.json").symlink_to(b / "entries" / f"{ids['b']}.json"),
        "is a symbolic link",
    ),
    "malformed JSON": (
        lambda b, ids: (b / "entries" / f"{BAD}.json").write_text('{"id": '),
        "malformed JSON",
    ),
    "integer of 5000 digits": (
        lambda b, ids: (b / "entries" / f"{BAD}.json").write_text('{"id": 1' + "0" * 5000 + "}"),
        "an integer of 5001 digits",
    ),
    "entry of another name": (
        lambda b, ids: (b / "entries" / "notes.json").write_text("{}"),
        "not named by an entry id",
    ),
    "hand-placed verification field": (
        lambda b, ids: _rewrite(b, ids["b"], lambda e: e.update(verification={"verified": True})),
        "an entry has exactly the fields",
    ),
    "curves of the wrong type": (
        lambda b, ids: _rewrite(b, ids["b"], lambda e: e.update(curves="up and to the right")),
        "curves has exactly the fields",
    ),
    "curve values of the wrong type": (
        lambda b, ids: _rewrite(b, ids["b"], lambda e: e["curves"].update(mean=["low"] * 33)),
        "lists of 1 to 200 numbers",
    ),
    "unregistered distribution": (
        lambda b, ids: _rewrite(b, ids["b"], lambda e: e["result"].update(dist_id="Test/Unregistered-v0")),
        "is not registered in the installed suite",
    ),
    "verification record of the wrong type": (
        lambda b, ids: _verification(b, ids["b"], '["verified", true]'),
        "a verification record has exactly the fields",
    ),
    "verification record is a FIFO": (
        lambda b, ids: (
            (b / "verifications").mkdir(exist_ok=True),
            _fifo(b / "verifications" / f"{ids['b']}.json"),
        ),
        "is a FIFO",
    ),
    "stored initialization links to /dev/zero": (
        lambda b, ids: _swap_init_for_link(b, ids["b"]),
        "is a symbolic link",
    ),
    "index.sqlite is garbage": (lambda b, ids: (b / "index.sqlite").write_bytes(b"\0" * 100), None),
}


def _swap_init_for_link(board: Path, entry_id: str) -> None:
    sha = _entry(board, entry_id)["result"]["init"]["sha256"]
    target = board / "inits" / f"{sha}.safetensors"
    target.unlink()
    target.symlink_to("/dev/zero")


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with no_hang(60):
        rc = main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return rc, text


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_show_render_and_submit_survive_a_bad_board_file(good_board, tiny_results, tmp_path, capsys, layout):
    source, ids = good_board
    board = tmp_path / "board"
    shutil.copytree(source, board, symlinks=True)
    make, reason = LAYOUTS[layout]
    make(board, ids)
    with no_hang(60):
        groups = leaderboard.ranked_protocols(leaderboard.Board(board))
    shown = {r["id"] for g in groups for r in g.rows}
    if reason is None:
        assert groups.quarantined == [] and shown == set(ids.values())
    else:
        assert any(reason in why for _, why in groups.quarantined), groups.quarantined
        assert shown and shown <= set(ids.values())  # the good entries are still shown
    rc, text = _run(["board", "show", "--board", str(board)], capsys)
    assert rc == 0 and TINY_SINUSOID in text
    if reason is not None:
        assert "quarantined (" in text and reason in text
    rc, text = _run(["board", "render", str(tmp_path / "site"), "--board", str(board)], capsys)
    assert rc == 0
    if reason is not None:
        assert "Quarantined files" in (tmp_path / "site" / "index.html").read_text()
    # a new submission still goes through, and leaves the bad file where it was
    path, init = tiny_results["a"]
    before = snapshot(board)
    rc, text = _run(["submit", str(path), "--init", str(init), "--board", str(board)], capsys)
    assert rc == 0, text
    after = snapshot(board)
    assert {k: v for k, v in before.items() if k != "index.sqlite"}.items() <= after.items()


@pytest.mark.parametrize(
    "layout", ["index.sqlite is a folder", "entries is a file", "inits is a link", "board is a file"]
)
def test_a_board_whose_structure_blocks_writes_is_refused_unchanged(
    good_board, tiny_results, tmp_path, capsys, layout
):
    source, _ = good_board
    board = tmp_path / "board"
    shutil.copytree(source, board, symlinks=True)
    if layout == "index.sqlite is a folder":
        (board / "index.sqlite").unlink()
        (board / "index.sqlite").mkdir()
    elif layout == "entries is a file":
        shutil.rmtree(board / "entries")
        (board / "entries").write_text("")
    elif layout == "inits is a link":
        shutil.rmtree(board / "inits")
        (board / "inits").symlink_to(tmp_path)
    else:
        shutil.rmtree(board)
        board.write_text("not a board")
    path, init = tiny_results["a"]
    before = snapshot(board) if board.is_dir() else board.read_bytes()
    rc, text = _run(["submit", str(path), "--init", str(init), "--board", str(board)], capsys)
    assert rc == 2 and ("refused" in text or "error" in text), text
    assert (snapshot(board) if board.is_dir() else board.read_bytes()) == before
    for argv in (["board", "show"], ["board", "render", str(tmp_path / "site")]):
        rc, text = _run([*argv, "--board", str(board)], capsys)
        if layout == "index.sqlite is a folder":
            assert rc == 0 and "quarantined" not in text  # the index is never read
        else:
            assert rc == 2 and "error" in text and str(board.name) in text


@pytest.mark.parametrize("kind", ["dangling symlink", "regular file", "missing"])
def test_board_path_that_is_not_a_folder(tiny_results, tmp_path, capsys, kind):
    board = tmp_path / "board"
    if kind == "dangling symlink":
        board.symlink_to(tmp_path / "nowhere")
    elif kind == "regular file":
        board.write_text("x")
    for argv in (["board", "show"], ["board", "render", str(tmp_path / "site")], ["board", "verify", BAD]):
        rc, text = _run([*argv, "--board", str(board)], capsys)
        assert rc == 2 and "error" in text
        assert ("No board at" if kind == "missing" else "a folder") in text
    path, init = tiny_results["a"]
    rc, text = _run(["submit", str(path), "--init", str(init), "--board", str(board)], capsys)
    if kind == "missing":
        assert rc == 0  # the first submission creates the board
    else:
        assert rc == 2 and "a folder" in text
        assert not (tmp_path / "nowhere").exists() and (kind != "regular file" or board.read_text() == "x")
