"""The data catalogue, downloads through it from 127.0.0.1, and readers of every format.

Canonical-format files are written from the shared compact data (or generated), and the
canonical readers must give arrays identical to the compact readers.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from metaenvs.cli import main as cli
from metaenvs.data import catalog, formats, tables
from metaenvs.data import vision as vision_data
from metaenvs.errors import DataError, InvalidArgumentError

from . import datagen


@pytest.fixture
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``ml-100k.zip`` rebuilt from the session's data (the
    shared real file, or the generated stand-in)."""
    root = tmp_path / "served"
    text = datagen.movielens_text(*datagen.movielens100k_rows().T)
    datagen.write_zip(root / "ml-100k.zip", {"ml-100k/u.data": text.encode()})
    datagen.write_zip(root / "bad.zip", {"ml-100k/u.data": text.encode()[:-10]})

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/truncated/"):
                body = (root / self.path.removeprefix("/truncated/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 3])
                self.close_connection = True
                return
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=str(root), **k)
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def point_at(name: str, url: str, **changes) -> None:
    entry = catalog.entry(name)
    changes = {"size": None, **changes}  # the served files are rebuilt, not the publisher's bytes
    catalog.add(replace(entry, files=(replace(entry.files[0], url=url, **changes),)))


@pytest.mark.real_data("movielens100k")
def test_u_data_rebuilt_from_compact_is_byte_identical_to_the_original(shared):
    with np.load(shared / "movielens_100k.npz") as f:
        text = datagen.movielens_text(f["user"], f["item"], f["rating"], f["timestamp"])
    assert (
        hashlib.sha256(text.encode()).hexdigest()
        == catalog.entry("movielens100k").files[0].members["ml-100k/u.data"]
    )


def test_fetch_verifies_members_and_loads_identical_arrays(served, tmp_path, restore_catalog):
    url, root = served
    with zipfile.ZipFile(root / "ml-100k.zip") as zf:  # the catalogue's own value on real data
        members = {"ml-100k/u.data": hashlib.sha256(zf.read("ml-100k/u.data")).hexdigest()}
    point_at(
        "movielens100k",
        f"{url}/ml-100k.zip",
        md5=None,
        sha256=datagen.sha256(root / "ml-100k.zip"),
        members=members,
    )
    assert cli(["data", "fetch", "movielens100k", "--data-dir", str(tmp_path / "d")]) == 0
    assert sorted(
        p.name for p in (tmp_path / "d" / "movielens100k").iterdir() if not p.name.startswith(".")
    ) == ["ml-100k.zip"]
    canonical = tables._ratings_cached("movielens100k", str(tmp_path / "d"))
    rows = datagen.movielens100k_rows()  # what the compact form (or the stand-in) holds
    assert canonical.user.dtype == canonical.item.dtype == np.int64 and canonical.rating.dtype == np.float64
    assert np.array_equal(canonical.user, rows[:, 0]) and np.array_equal(canonical.item, rows[:, 1])
    assert np.array_equal(canonical.rating, rows[:, 2].astype(np.float64))
    if datagen.has_real("movielens100k"):  # the session folder holds the compact form: the same arrays
        compact = tables.ratings("movielens100k")
        for field in ("user", "item", "rating"):
            a, b = getattr(canonical, field), getattr(compact, field)
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_checksum_mismatch_is_refused_and_nothing_is_left(served, tmp_path, restore_catalog):
    url, _ = served
    point_at("movielens100k", f"{url}/ml-100k.zip", md5=None, sha256="0" * 64)
    with pytest.raises(DataError, match="Checksum mismatch"):
        catalog.fetch("movielens100k", tmp_path / "d")
    assert not (tmp_path / "d").exists()  # no partial file, and no folder the download made


def test_member_mismatch_is_refused_and_removed(served, tmp_path, restore_catalog):
    url, root = served  # the whole file matches its (pinned) sha256, but its u.data member does not
    members = datagen.ORIGINAL["movielens100k"].files[0].members
    point_at(
        "movielens100k", f"{url}/bad.zip", md5=None, sha256=datagen.sha256(root / "bad.zip"), members=members
    )
    with pytest.raises(DataError, match=r"failed verification.*u\.data has sha256"):
        catalog.fetch("movielens100k", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_truncated_transfer_is_refused(served, tmp_path, restore_catalog):
    url, _ = served
    point_at("movielens100k", f"{url}/truncated/ml-100k.zip", md5=None)
    with pytest.raises(DataError, match=r"truncated|Could not download"):
        catalog.fetch("movielens100k", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_offline_with_data_present_never_touches_the_network(served, tmp_path, restore_catalog):
    _, root = served
    folder = tmp_path / "d" / "movielens100k"
    folder.mkdir(parents=True)
    (folder / "ml-100k.zip").write_bytes((root / "ml-100k.zip").read_bytes())
    served_sha = datagen.sha256(root / "ml-100k.zip")
    point_at(
        "movielens100k", "http://127.0.0.1:9/unreachable.zip", md5=None, sha256=served_sha
    )  # a dead port
    found = catalog.locate("movielens100k", tmp_path / "d", download_missing=False)
    assert found.form == "canonical" and found.paths["ml-100k.zip"] == folder / "ml-100k.zip"


def test_missing_data_says_what_to_download_where_and_which_command(tmp_path):
    with pytest.raises(DataError) as err:
        catalog.locate("movielens1m", tmp_path, download_missing=False)
    text = str(err.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in text
    assert str(tmp_path / "movielens1m" / "ml-1m.zip") in text
    assert "metaenvs data fetch movielens1m" in text and "METAENVS_DATA" in text


def test_corrupt_file_is_reported_by_verify(tmp_path, capsys, restore_catalog):
    catalog.add(datagen.ORIGINAL["omniglot"])  # the publisher's size and sha256, not a stand-in's pin
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_background.zip").write_bytes(b"not a zip")
    assert cli(["data", "verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "omniglot" in out and "corrupt" in out and "size 9 bytes" in out


def test_verify_lists_the_session_folder(capsys):
    assert cli(["data", "verify"]) == 0
    out = capsys.readouterr().out
    jester = "compact" if datagen.has_real("jester1") else "canonical"  # a generated stand-in
    assert f"jester1         {jester}" in out and "svhn            canonical" in out
    assert " corrupt " not in out and " missing " not in out


def test_unknown_data_set_names_the_known_ones():
    with pytest.raises(InvalidArgumentError, match="Known data sets: cifar10"):
        catalog.entry("imagenet")


# ----- readers: canonical == compact -------------------------------------------------
@pytest.mark.real_data("omniglot", "omniglot_105x105_bitpacked.npz")
def test_omniglot_zips_read_identically_to_the_compact_file(tmp_path, shared):
    chosen = {0: ["Latin", "Greek"], 1: ["Keble"]}
    datagen.omniglot_zips(tmp_path / "omniglot", chosen)
    datagen.pin("omniglot", tmp_path)
    canonical = tables._omniglot_cached(str(tmp_path))
    compact = tables.omniglot()
    names = np.array(compact.alphabet_names)[compact.alphabet]
    rows = np.flatnonzero(np.isin(names, ["Latin", "Greek", "Keble"]))
    assert canonical.images.shape == (len(rows), 20, 28, 28)
    assert np.array_equal(canonical.images, compact.images[rows])
    assert np.array_equal(canonical.character, compact.character[rows])
    assert np.array_equal(canonical.subset, compact.subset[rows])
    assert list(np.array(canonical.alphabet_names)[canonical.alphabet]) == list(names[rows])


@pytest.mark.real_data("omniglot", "omniglot_105x105_bitpacked.npz")
def test_area_resize_matches_the_compact_conversion_everywhere(shared):
    with np.load(shared / "omniglot_105x105_bitpacked.npz") as f, np.load(shared / "omniglot_28x28.npz") as g:
        sample = np.random.default_rng(0).choice(len(f["images_packed"]), 2000, replace=False)
        images = np.unpackbits(f["images_packed"][sample], axis=1, count=105 * 105).reshape(-1, 105, 105)
        assert np.array_equal(formats.area_resize(images.astype(bool), 28), g["images"][sample])


@pytest.mark.real_data("jester1")
def test_jester_csv_and_xls_read_identically_to_the_compact_file(tmp_path, shared):
    xlwt = pytest.importorskip("xlwt")
    with np.load(shared / "jester1.npz") as f:
        x100, n_rated = f["ratings_x100"][:300].astype(np.int64), f["n_rated"][:300]
    sheet = np.where(x100 == 9900, 99.0, x100 / 100.0)
    rows = [[int(n), *row] for n, row in zip(n_rated, sheet.tolist(), strict=True)]
    (tmp_path / "jester-data-1.csv").write_text("\n".join(",".join(f"{v:g}" for v in r) for r in rows) + "\n")
    book = xlwt.Workbook()
    ws = book.add_sheet("jester-data-1")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            ws.write(i, j, value)
    book.save(str(tmp_path / "jester-data-1.xls"))
    datagen.write_zip(
        tmp_path / "jester_dataset_1_1.zip",
        {"jester-data-1.xls": (tmp_path / "jester-data-1.xls").read_bytes()},
    )
    expected = tables.jester_long_form(x100)
    for path in ("jester-data-1.csv", "jester-data-1.xls", "jester_dataset_1_1.zip"):
        got = formats.read_jester(tmp_path / path)
        assert np.array_equal(got[:, 0], n_rated)
        long = tables.jester_long_form(np.rint(got[:, 1:] * 100).astype(np.int64))
        assert np.array_equal(long.user, expected.user) and np.array_equal(long.rating, expected.rating)
    full = tables.ratings("jester1")
    assert len(full.user) == 1_810_455  # every rating of jester-data-1 (MANIFEST)


@pytest.mark.real_data("mnist")
def test_mnist_idx_files_read_identically_to_the_compact_file(tmp_path, shared):
    with np.load(shared / "mnist_subset.npz") as f:
        x, y, split = f["images"], f["labels"], f["split"]
    datagen.write_idx_set(tmp_path / "mnist", x[split == 0], y[split == 0], x[split == 1], y[split == 1])
    datagen.pin("mnist", tmp_path)
    canonical = vision_data._vision_cached("mnist", str(tmp_path))
    compact = vision_data.vision("mnist")
    for field in ("images", "labels", "is_test"):
        assert np.array_equal(getattr(canonical, field), getattr(compact, field)), field
    assert canonical.class_names == compact.class_names


@pytest.mark.real_data("cifar10")
def test_cifar10_binary_reads_identically_to_the_compact_file(tmp_path, shared):
    compact = vision_data.vision("cifar10")
    datagen.write_cifar10(
        tmp_path / "cifar10" / "cifar-10-binary.tar.gz",
        compact.images,
        compact.labels,
        compact.is_test,
        compact.class_names,
    )
    datagen.pin("cifar10", tmp_path)
    canonical = vision_data._vision_cached("cifar10", str(tmp_path))
    for field in ("images", "labels", "is_test"):
        assert np.array_equal(getattr(canonical, field), getattr(compact, field)), field
    assert canonical.class_names == compact.class_names


def test_generated_formats_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images, digits = datagen.write_svhn(tmp_path / "s.mat", rng, 30)
    got_x, got_y = formats.read_svhn_mat(tmp_path / "s.mat")
    assert np.array_equal(got_x, images) and np.array_equal(got_y, digits)  # 10 in the file means 0
    written = datagen.write_cifar100(tmp_path / "c.tar.gz", rng, 20, 10)
    x, labels = formats.read_cifar_binary(tmp_path / "c.tar.gz", ["cifar-100-binary/train.bin"], 2)
    assert np.array_equal(x, written["train"][0]) and np.array_equal(labels[:, 1], written["train"][1])
    table = datagen.write_movielens1m(tmp_path / "ml-1m.zip", rng, users=5, items=90)
    assert np.array_equal(formats.read_movielens(tmp_path / "ml-1m.zip", "ml-1m/ratings.dat"), table)
    (tmp_path / "x.idx").write_bytes(datagen.idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3)))
    with pytest.raises(DataError, match="not an IDX file"):
        formats.read_idx(tmp_path / "x.idx")  # gzip bytes without the .gz suffix


def test_sklearn_digits_load():
    pytest.importorskip("sklearn")
    digits = vision_data.vision("digits")
    assert digits.images.shape == (1797, 8, 8, 1) and digits.images.max() == 255


def test_ratings_csv_reader(tmp_path):
    (tmp_path / "r.csv").write_text("user,item,rating\nu1,i1,4\nu2,i1,3.5\n")
    users, items, values = formats.read_ratings_csv(tmp_path / "r.csv")
    assert list(users) == ["u1", "u2"] and list(items) == ["i1", "i1"] and list(values) == [4.0, 3.5]
    (tmp_path / "bad.csv").write_text("u1,i1\n")
    with pytest.raises(DataError, match="row 1 has fewer than 3 fields"):
        formats.read_ratings_csv(tmp_path / "bad.csv")
    (tmp_path / "nan.csv").write_text("u1,i1,good\nu2,i2,3\n")
    with pytest.raises(DataError, match="not a number"):
        formats.read_ratings_csv(tmp_path / "nan.csv", header=False)


def test_files_without_a_checksum_need_explicit_consent(served, tmp_path, capsys, restore_catalog):
    url, root = served
    point_at("jester1", f"{url}/ml-100k.zip", sha256=None, md5=None)  # an entry with no checksum at all
    with pytest.raises(DataError, match=r"No checksum is on record.*--allow-unverified"):
        catalog.fetch("jester1", tmp_path)
    assert not (tmp_path / "jester1").exists() or not any((tmp_path / "jester1").iterdir())
    assert cli(["data", "fetch", "jester1", "--data-dir", str(tmp_path), "--allow-unverified"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    side = tmp_path / "jester1" / "jester_dataset_1_1.zip.sha256"
    assert side.read_text().split()[0] == datagen.sha256(root / "ml-100k.zip")
