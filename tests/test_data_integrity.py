"""The data stamp, ``metaenvs data verify``, download caps and deadlines, and bounded reads.

Downloads are served by a local HTTP server on 127.0.0.1; every data file here is generated.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
import zipfile
from dataclasses import replace

import pytest

from metaenvs.cli import main as cli
from metaenvs.data import catalog, formats, integrity
from metaenvs.data.download import download, download_deadline
from metaenvs.errors import DataError, InvalidArgumentError

from . import datagen

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class Handler(http.server.BaseHTTPRequestHandler):
    """``/file`` (with Content-Length), ``/nolength`` (close-delimited), ``/slow`` (a trickle)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path == "/file":
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/nolength":
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/slow":
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for i in range(0, 400, 8):  # 8 bytes every 0.1 s: never idle long enough for the socket timeout
                try:
                    self.wfile.write(PAYLOAD[i : i + 8])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        self.close_connection = True


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def one_file_entry(name: str, data: bytes, url: str = "http://127.0.0.1:9/x.bin") -> catalog.RemoteFile:
    """Replace catalogue entry ``name`` by one file ``x.bin`` pinned to ``data``."""
    import hashlib

    remote = catalog.RemoteFile("x.bin", url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    catalog.add(replace(catalog.entry(name), files=(remote,), compact=None, compact_sha256=None))
    return remote


# ----- the stamp ----------------------------------------------------------------------------
def test_in_place_corruption_with_size_and_mtime_restored_is_refused(tmp_path, monkeypatch, restore_catalog):
    monkeypatch.setattr(integrity, "RACY_NS", 0)  # trust a stamp at once (the file is seconds old)
    hashed = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(p) or real(p))
    data = b"good data " * 1000
    remote = one_file_entry("jester1", data)
    path = tmp_path / "jester1" / "x.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    time.sleep(0.05)  # the file's ctime tick is over before it is hashed
    assert catalog.file_problems(path, remote) == [] and len(hashed) == 1
    assert catalog.file_problems(path, remote) == [] and len(hashed) == 1  # the stamp spared a hash
    before = path.stat()
    time.sleep(0.05)
    with open(path, "r+b") as fh:  # same size, different bytes, mtime put back
        fh.write(b"EVIL")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    problems = catalog.file_problems(path, remote)
    assert len(hashed) == 2 and problems and f"expected {remote.sha256}" in problems[0]
    with pytest.raises(DataError, match=r"sha256 .* expected"):
        catalog.locate("jester1", tmp_path, download_missing=False)


def test_a_stamp_written_moments_after_a_change_is_not_trusted(tmp_path, monkeypatch, restore_catalog):
    hashed = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(p) or real(p))
    remote = one_file_entry("jester1", b"abc")
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert catalog.file_problems(path, remote) == [] == catalog.file_problems(path, remote)
    assert len(hashed) == 2  # changed within RACY_NS of its hashing: hashed again, not trusted


def test_verify_rehashes_and_ignores_a_forged_stamp(tmp_path, monkeypatch, restore_catalog):
    monkeypatch.setattr(integrity, "RACY_NS", 0)
    data = b"x" * 5000
    remote = one_file_entry("jester1", data)
    path = tmp_path / "jester1" / "x.bin"
    path.parent.mkdir()
    path.write_bytes(b"y" * 5000)
    st = path.stat()
    integrity.write_stamp(path, remote.sha256, st, time.time_ns() + 10**10, catalog._expectation(remote))
    assert catalog.file_problems(path, remote) == []  # the forged stamp fools a plain load ...
    report = catalog.verify(tmp_path)["jester1"]  # ... but never verify
    assert report["form"] == "corrupt" and f"expected {remote.sha256}" in report["detail"]


# ----- metaenvs data verify -------------------------------------------------------------------
def test_verify_reports_a_corrupt_compact_file_as_corrupt_and_exits_1(tmp_path, capsys):
    ds = catalog.entry("mnist")
    (tmp_path / ds.compact).write_bytes(b"not the compact file")
    assert cli(["data", "verify", "--data-dir", str(tmp_path)]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("mnist "))
    assert "corrupt" in line and str(tmp_path / ds.compact) in line
    assert f"expected {ds.compact_sha256}" in line and "metaenvs data fetch mnist" in line


def test_verify_names_expected_and_actual_sha256_of_a_same_size_canonical_file(tmp_path, capsys):
    remote = catalog.entry("movielens1m").files[0]
    path = tmp_path / "movielens1m" / remote.filename
    path.parent.mkdir()
    with open(path, "wb") as fh:
        fh.truncate(remote.size)  # right size, wrong bytes
    assert cli(["data", "verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("movielens1m "))
    assert "corrupt" in line and f"expected {remote.sha256}" in line
    assert f"sha256 {datagen.sha256(path)}" in line and "metaenvs data fetch movielens1m" in line
    assert "omniglot        missing" in out  # absent data sets are still just missing


def test_verify_of_an_empty_folder_exits_0_and_creates_nothing(tmp_path, capsys):
    assert cli(["data", "verify", "--data-dir", str(tmp_path / "none")]) == 0
    assert "metaenvs data fetch cifar10" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()


# ----- downloads: size cap, deadline, no folders left -------------------------------------------
@pytest.mark.parametrize("route", ["file", "nolength"])
def test_download_is_capped_at_the_expected_size(server, tmp_path, route):
    dest = tmp_path / "cache" / "x.bin"
    with pytest.raises(DataError, match=r"(announces|sent more than) \d+ bytes.*catalogue says"):
        download(f"{server}/{route}", dest, max_bytes=1000)
    assert not (tmp_path / "cache").exists()
    assert download(f"{server}/{route}", dest, max_bytes=len(PAYLOAD)).read_bytes() == PAYLOAD


def test_fetch_caps_the_download_at_the_catalogue_size(server, tmp_path, restore_catalog):
    remote = one_file_entry("jester1", PAYLOAD[:3000], url=f"{server}/nolength")
    with pytest.raises(DataError, match=f"more than {remote.size} bytes"):
        catalog.fetch("jester1", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_download_has_an_overall_deadline(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(
        DataError, match=r"did not finish within its 0.5 s deadline.*METAENVS_DOWNLOAD_DEADLINE"
    ):
        download(f"{server}/slow", tmp_path / "c" / "x.bin", timeout=30, deadline=0.5)
    assert time.monotonic() - started < 3 and not (tmp_path / "c").exists()


def test_the_deadline_is_configurable_and_checked(monkeypatch):
    monkeypatch.setenv("METAENVS_DOWNLOAD_DEADLINE", "12.5")
    assert download_deadline() == 12.5 and download_deadline(3) == 3
    for bad in ("soon", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("METAENVS_DOWNLOAD_DEADLINE", bad)
        with pytest.raises(InvalidArgumentError, match="METAENVS_DOWNLOAD_DEADLINE"):
            download_deadline()


def test_reading_an_absent_data_set_creates_no_folder(tmp_path, monkeypatch, restore_catalog):
    one_file_entry("jester1", b"abc")  # served from a dead port
    root = tmp_path / "data"
    with pytest.raises(DataError, match="metaenvs data fetch jester1"):
        catalog.locate("jester1", root, download_missing=False)
    assert not root.exists()
    with pytest.raises(DataError, match="Could not download"):
        catalog.locate("jester1", root, download_missing=True)
    assert not root.exists()


# ----- bounded reads ----------------------------------------------------------------------------
def test_a_zip_member_that_inflates_past_the_limit_is_refused(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "ml.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", b"1\t1\t1\t1\n" * 200_000)  # 1.6 MB, deflates to a few KB
    assert (tmp_path / "ml.zip").stat().st_size < 50_000
    monkeypatch.setenv("METAENVS_MAX_FILE_BYTES", "1000000")
    with pytest.raises(DataError, match=r"larger than the 1000000-byte limit.*METAENVS_MAX_FILE_BYTES"):
        formats.read_movielens(tmp_path / "ml.zip", "ml-100k/u.data")
    monkeypatch.delenv("METAENVS_MAX_FILE_BYTES")
    assert formats.read_movielens(tmp_path / "ml.zip", "ml-100k/u.data").shape == (200_000, 4)
    monkeypatch.setenv("METAENVS_MAX_FILE_BYTES", "lots")
    with pytest.raises(InvalidArgumentError, match="METAENVS_MAX_FILE_BYTES='lots'"):
        formats.read_movielens(tmp_path / "ml.zip", "ml-100k/u.data")


def test_a_gzip_bomb_idx_file_is_refused(tmp_path, monkeypatch):
    import gzip

    (tmp_path / "x-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + bytes(4) + bytes(3_000_000))
    )
    monkeypatch.setenv("METAENVS_MAX_FILE_BYTES", "100000")
    with pytest.raises(DataError, match="larger than the 100000-byte limit"):
        formats.read_idx(tmp_path / "x-idx1-ubyte.gz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_in_place_of_a_data_file_is_refused_without_hanging(tmp_path, restore_catalog):
    remote = one_file_entry("jester1", b"abc")
    (tmp_path / "jester1").mkdir()
    os.mkfifo(tmp_path / "jester1" / "x.bin")
    assert "not a regular file" in catalog.file_problems(tmp_path / "jester1" / "x.bin", remote)[0]
    os.mkfifo(tmp_path / "u.data")
    with pytest.raises(DataError, match="not a regular file"):
        formats.read_movielens(tmp_path / "u.data", "u.data")
    with pytest.raises(DataError, match="not a regular file"):
        formats.read_ratings_csv(tmp_path / "u.data")


def test_a_dangling_symlink_is_corrupt_not_missing(tmp_path, restore_catalog):
    remote = one_file_entry("jester1", b"abc")
    (tmp_path / "jester1").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "jester1" / "x.bin")
    problems = catalog.file_problems(tmp_path / "jester1" / "x.bin", remote)
    assert problems != ["missing"] and "Cannot read" in problems[0]
    assert catalog.verify(tmp_path)["jester1"]["form"] == "corrupt"


def test_a_truncated_archive_is_a_clean_data_error(tmp_path):
    datagen.write_zip(tmp_path / "j.zip", {"jester-data-1.csv": b"1,2\n" * 1000})
    (tmp_path / "cut.zip").write_bytes((tmp_path / "j.zip").read_bytes()[:-30])
    for reader in (formats.read_jester, formats.read_omniglot_zip):
        with pytest.raises(DataError):
            reader(tmp_path / "cut.zip")
    (tmp_path / "cut.tar.gz").write_bytes(b"\x1f\x8b" + bytes(50))
    with pytest.raises(DataError, match="not a readable tar archive"):
        formats.read_tar_text(tmp_path / "cut.tar.gz", "x.txt")
