"""Verified downloads against a local HTTP server on 127.0.0.1 serving real shared data files."""

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from metaenvs.data import data_dir, download, ensure_file
from metaenvs.errors import DataError

from .datagen import SHARED


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    source = SHARED / "jester1.npz"
    payload = source.read_bytes() if source.is_file() else bytes(range(256)) * 4096
    (root / "data.bin").write_bytes(payload)

    def handler(*args, **kwargs):
        return Handler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256(payload).hexdigest(), payload
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_is_verified(server, tmp_path):
    url, sha, payload = server
    dest = download(f"{url}/data.bin", tmp_path / "cache" / "data.bin", sha)
    assert dest.read_bytes() == payload and leftovers(tmp_path / "cache") == ["data.bin"]


def test_checksum_mismatch_is_refused_and_nothing_is_kept(server, tmp_path):
    url, _, _ = server
    with pytest.raises(DataError, match=r"Checksum mismatch.*not kept"):
        download(f"{url}/data.bin", tmp_path / "cache" / "data.bin", "0" * 64)
    assert leftovers(tmp_path / "cache") == []


def test_truncated_transfer_is_refused(server, tmp_path):
    url, sha, _ = server
    with pytest.raises(DataError, match=r"truncated|Could not download"):
        download(f"{url}/truncated/data.bin", tmp_path / "cache" / "data.bin", sha)
    assert leftovers(tmp_path / "cache") == []


def test_offline_run_with_data_present_needs_no_network(server, tmp_path):
    _, sha, payload = server
    dest = tmp_path / "cache" / "data.bin"
    dest.parent.mkdir()
    dest.write_bytes(payload)
    # A dead port: any network access would fail.
    assert ensure_file("http://127.0.0.1:9/data.bin", dest, sha, offline=True) == dest


def test_missing_or_corrupt_file_offline_says_what_to_do(tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(DataError, match=r"missing\. Download http://x/data.bin .*metaenvs data fetch"):
        ensure_file("http://x/data.bin", dest, "ab" * 32, offline=True, fetch_command="metaenvs data fetch x")
    dest.write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt"):
        ensure_file("http://x/data.bin", dest, "ab" * 32, offline=True)


def test_corrupt_file_is_replaced_by_a_verified_download(server, tmp_path):
    url, sha, payload = server
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"garbage")
    assert ensure_file(f"{url}/data.bin", dest, sha).read_bytes() == payload


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("METAENVS_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("METAENVS_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "metaenvs"
