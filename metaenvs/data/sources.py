"""The catalogue's entries: canonical URLs, sizes and checksums, with where each checksum comes from.

Sources (facts carried over, named per file):

* **TFDS**: tensorflow/datasets ``tensorflow_datasets/url_checksums/<name>.txt`` (URL, size, sha256);
* **TV**: pytorch/vision ``torchvision/datasets`` (md5) and ``torchvision/prototype/datasets/_builtin``
  (sha256);
* **gomlx**: gomlx/gomlx ``examples/cifar/cifar.go`` (sha256);
* **OmniRec**: ISG-Siegen/OmniRec ``src/omnirec/data_loaders`` (sha256);
* **GroupLens**: the ``.zip.md5`` files GroupLens publishes beside each archive.

Where two sources are named they agree. Jester publishes no checksum; its sha256 is the one two
independent public records of the same Wayback-archived files agree on (repositories not
resolvable here). None of the canonical files could be downloaded from this machine, so no
value was re-hashed locally, except MovieLens ``u.data``, which we rebuilt byte for byte.
Compact ``.npz`` hashes are those of the shared build listed in its ``MANIFEST.md``.
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
TFDS_TV = "TFDS and TV (sha256); TV (md5)"


def _idx_entry(name: str, title: str, base: str, rows: tuple[tuple[int, str, str], ...], terms: str,
               compact: str | None = None, compact_sha: str | None = None) -> None:  # fmt: skip
    files = tuple(
        RemoteFile(f, base + f, sha256=sha, size=size, md5=md5, source=TFDS_TV)
        for f, (size, sha, md5) in zip(IDX_NAMES, rows, strict=True)
    )
    add(DatasetEntry(name, title, files, compact, compact_sha, terms))


_idx_entry(
    "mnist",
    "MNIST (LeCun, Cortes & Burges)",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    (
        (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "d53e105ee54ea40749a09fcbcd1e9432"),
        (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "9fb629c4189551a2d022fa330f9573f3"),
        (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    "CC BY-SA 3.0 as commonly stated",
    "mnist_subset.npz",
    "db3a8ac6b09f8624451e73ad81d887b552c66ed9a9fbd8400d719d5e9ba6ebba",
)  # fmt: skip
_idx_entry(
    "fashion_mnist",
    "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017)",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    (
        (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", "25c81989df183df01b3e8a0aad5dffbe"),
        (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", "bef4ecab320f06d8554ea6380940ec79"),
        (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "MIT",
)  # fmt: skip
_idx_entry(
    "kmnist",
    "Kuzushiji-MNIST (Clanuwat et al. 2018)",
    "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    (
        (18165135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4", "bdb82020997e1d708af4cf47b453dcf7"),
        (29497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17", "e144d726b3acfaa3e44228e80efcd344"),
        (3041136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5", "5c965bf0a639b31b8f53240b1b52f4d7"),
        (5120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c", "7320c461ea6c1c855c0b718fb2a4b134"),
    ),
    "CC BY-SA 4.0",
)  # fmt: skip
SVHN = "http://ufldl.stanford.edu/housenumbers/"
add(DatasetEntry(
    "svhn",
    "SVHN cropped digits (Netzer et al. 2011)",
    (RemoteFile("train_32x32.mat", SVHN + "train_32x32.mat", size=182040794, md5="e26dedcc434d2e4c54c9b2d4a06d8373",
                sha256="435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", source=TFDS_TV),
     RemoteFile("test_32x32.mat", SVHN + "test_32x32.mat", size=64275384, md5="eb5a983be6a315427106f1b164d9cef3",
                sha256="cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", source=TFDS_TV)),
    terms="non-commercial use only",
))  # fmt: skip
add(DatasetEntry(
    "cifar10",
    "CIFAR-10, binary version (Krizhevsky 2009)",
    (RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", size=170052171,
                md5="c32a1d4ab5d03f1284b67883e8d87530", source="gomlx (sha256); several projects that pin it"),),
    "cifar10_subset.npz",
    "a80fc45eb156c89c91ca67d9895b67e4e3b0b1dea71b97e89ac36506c1ce2a9a",
    "cite Krizhevsky 2009",
))  # fmt: skip
add(DatasetEntry(
    "cifar100",
    "CIFAR-100, binary version (Krizhevsky 2009)",
    (RemoteFile("cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec", size=168513733,
                md5="03b5dce01913d631647c71ecec9e9cb8", source="TFDS and gomlx (sha256)"),),
    terms="cite Krizhevsky 2009",
))  # fmt: skip
OMNIGLOT = "https://github.com/brendenlake/omniglot/raw/master/python/"
add(DatasetEntry(
    "omniglot",
    "Omniglot (Lake, Salakhutdinov & Tenenbaum 2015)",
    (RemoteFile("images_background.zip", OMNIGLOT + "images_background.zip", size=9464212,
                sha256="ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640",
                md5="68d2efa1b9178cc56df9314c21c6e718", source=TFDS_TV),
     RemoteFile("images_evaluation.zip", OMNIGLOT + "images_evaluation.zip", size=6462886,
                sha256="1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee",
                md5="6b91aef0f799c5bb55b94e3f2daec811", source=TFDS_TV)),
    "omniglot_28x28.npz",
    "9ff2f66016d6b1b4b49e54b287731f3f61d615846c21efaee0868044a1a9835d",
    "MIT",
))  # fmt: skip
MOVIELENS = "https://files.grouplens.org/datasets/movielens/"
add(DatasetEntry(
    "movielens100k",
    "MovieLens 100K (Harper & Konstan 2015)",
    (RemoteFile("ml-100k.zip", MOVIELENS + "ml-100k.zip", size=4924029, md5="0e33842e24a9c977be4e0107933c0723",
                sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                members={"ml-100k/u.data": UDATA_SHA256},
                source="TFDS and OmniRec (sha256); GroupLens (md5); u.data from the shared build's provenance"),),
    "movielens_100k.npz",
    "07f16886c068ab58d3c0cf456efdd2cdf042be1bc4863a89913d6af9f161f243",
    "research use only; no redistribution (GroupLens README)",
))  # fmt: skip
add(DatasetEntry(
    "movielens1m",
    "MovieLens 1M (Harper & Konstan 2015)",
    (RemoteFile("ml-1m.zip", MOVIELENS + "ml-1m.zip", size=5917549, md5="c4d9eecfca2ab87c1945afe126590906",
                sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                source="TFDS, OmniRec and tensorflow/examples (sha256); GroupLens (md5)"),),
    terms="research use only; no redistribution (GroupLens README)",
))  # fmt: skip
add(DatasetEntry(
    "jester1",
    "Jester dataset 1, part 1 (Goldberg et al. 2001)",
    (RemoteFile("jester_dataset_1_1.zip", "https://eigentaste.berkeley.edu/dataset/archive/jester_dataset_1_1.zip",
                size=4171628, sha256="cb7841756ded125b15f3d95c9f8241224065e96354c132a46ae4214deeab7615",
                source="no published checksum; two independent public records agree"),),
    "jester1.npz",
    "5371400a9ad4b1e491df9e63b743e274aade9c8a14d81cac6eb65f994ece2c98",
    "free for research use when acknowledged (Goldberg et al. 2001)",
))  # fmt: skip
