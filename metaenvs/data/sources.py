"""The catalogue's entries, and loaders that give the same arrays from either form.

Checksums and where they come from:

* ``sha256`` of a whole file is given where the publisher, or independent projects that pin
  it, record one (the source is named per file). Where none is on record, the
  publisher's / torchvision's ``md5`` is checked instead, and for archives whose members
  we could hash from public copies (MovieLens 100K ``u.data``) the member sha256 too.
* Compact ``.npz`` hashes are those of the shared build listed in its ``MANIFEST.md``.
"""

from __future__ import annotations

from metaenvs.data.catalog import DatasetEntry, RemoteFile, add

IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
UDATA_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
TORCHVISION = "torchvision.datasets (md5 of the published file)"


def _idx_entry(
    name: str,
    title: str,
    base: str,
    md5s: tuple[str, ...],
    sha256s: tuple[str | None, ...],
    source: str,
    terms: str,
    compact: str | None = None,
    compact_sha: str | None = None,
) -> None:
    files = tuple(
        RemoteFile(f, base + f, sha256=s, md5=m, source=source)
        for f, m, s in zip(IDX_NAMES, md5s, sha256s, strict=True)
    )
    add(DatasetEntry(name, title, files, compact, compact_sha, terms))


_idx_entry(
    "mnist",
    "MNIST (LeCun, Cortes & Burges)",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    (None, None, None, None),
    TORCHVISION,
    "CC BY-SA 3.0 as commonly stated",
    "mnist_subset.npz",
    "db3a8ac6b09f8624451e73ad81d887b552c66ed9a9fbd8400d719d5e9ba6ebba",
)
_idx_entry(
    "fashion_mnist",
    "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017)",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    (None, None, None, None),
    TORCHVISION,
    "MIT",
)
_idx_entry(
    "kmnist",
    "Kuzushiji-MNIST (Clanuwat et al. 2018)",
    "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    (
        "bdb82020997e1d708af4cf47b453dcf7",
        "e144d726b3acfaa3e44228e80efcd344",
        "5c965bf0a639b31b8f53240b1b52f4d7",
        "7320c461ea6c1c855c0b718fb2a4b134",
    ),
    (None, None, None, None),
    TORCHVISION,
    "CC BY-SA 4.0",
)
add(
    DatasetEntry(
        "svhn",
        "SVHN cropped digits (Netzer et al. 2011)",
        (
            RemoteFile(
                "train_32x32.mat",
                "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                md5="e26dedcc434d2e4c54c9b2d4a06d8373",
                source=TORCHVISION,
            ),
            RemoteFile(
                "test_32x32.mat",
                "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                md5="eb5a983be6a315427106f1b164d9cef3",
                source=TORCHVISION,
            ),
        ),
        terms="non-commercial use only",
    )
)
add(
    DatasetEntry(
        "cifar10",
        "CIFAR-10, binary version (Krizhevsky 2009)",
        (
            RemoteFile(
                "cifar-10-binary.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                size=170052171,
                md5="c32a1d4ab5d03f1284b67883e8d87530",
                source="gomlx/gomlx examples/cifar (sha256); JuliaML/MLDatasets.jl (sha256)",
            ),
        ),
        "cifar10_subset.npz",
        "a80fc45eb156c89c91ca67d9895b67e4e3b0b1dea71b97e89ac36506c1ce2a9a",
        "cite Krizhevsky 2009",
    )
)
add(
    DatasetEntry(
        "cifar100",
        "CIFAR-100, binary version (Krizhevsky 2009)",
        (
            RemoteFile(
                "cifar-100-binary.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                source="gomlx/gomlx examples/cifar (sha256)",
            ),
        ),
        terms="cite Krizhevsky 2009",
    )
)
add(
    DatasetEntry(
        "omniglot",
        "Omniglot (Lake, Salakhutdinov & Tenenbaum 2015)",
        (
            RemoteFile(
                "images_background.zip",
                "https://github.com/brendenlake/omniglot/raw/master/python/images_background.zip",
                size=9464212,
                md5="68d2efa1b9178cc56df9314c21c6e718",
                source=TORCHVISION,
            ),
            RemoteFile(
                "images_evaluation.zip",
                "https://github.com/brendenlake/omniglot/raw/master/python/images_evaluation.zip",
                size=6462886,
                md5="6b91aef0f799c5bb55b94e3f2daec811",
                source=TORCHVISION,
            ),
        ),
        "omniglot_28x28.npz",
        "9ff2f66016d6b1b4b49e54b287731f3f61d615846c21efaee0868044a1a9835d",
        "MIT",
    )
)
add(
    DatasetEntry(
        "movielens100k",
        "MovieLens 100K (Harper & Konstan 2015)",
        (
            RemoteFile(
                "ml-100k.zip",
                "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                md5="0e33842e24a9c977be4e0107933c0723",
                members={"ml-100k/u.data": UDATA_SHA256},
                source="GroupLens (md5 ml-100k.zip.md5); u.data sha256 from the shared build's provenance",
            ),
        ),
        "movielens_100k.npz",
        "07f16886c068ab58d3c0cf456efdd2cdf042be1bc4863a89913d6af9f161f243",
        "research use only; no redistribution (GroupLens README)",
    )
)
add(
    DatasetEntry(
        "movielens1m",
        "MovieLens 1M (Harper & Konstan 2015)",
        (
            RemoteFile(
                "ml-1m.zip",
                "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                md5="c4d9eecfca2ab87c1945afe126590906",
                source="GroupLens (md5 ml-1m.zip.md5)",
            ),
        ),
        terms="research use only; no redistribution (GroupLens README)",
    )
)
add(
    DatasetEntry(
        "jester1",
        "Jester dataset 1, part 1 (Goldberg et al. 2001)",
        (
            RemoteFile(
                "jester_dataset_1_1.zip",
                "https://eigentaste.berkeley.edu/dataset/jester_dataset_1_1.zip",
                source="no checksum is published; verified by its readable sheet only",
            ),
        ),
        "jester1.npz",
        "5371400a9ad4b1e491df9e63b743e274aade9c8a14d81cac6eb65f994ece2c98",
        "free for research use when acknowledged (Goldberg et al. 2001)",
    )
)
