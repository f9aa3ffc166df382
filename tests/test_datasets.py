"""Data sets: the formats and the search order (downloads: tests/test_downloads.py)."""

import gzip
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from swarmedge.datasets import load_dataset
from swarmedge.datasets.imdb import load_imdb
from swarmedge.datasets.mnist import load_mnist, read_idx
from swarmedge.errors import InputError


def test_mnist_idx_and_npz_agree(data_dir):
    x_idx = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    y_idx = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    x_npz, y_npz = load_mnist("test", data_dir / "mnist.npz")
    assert x_idx.shape == (10000, 28, 28) and np.array_equal(x_idx, x_npz) and np.array_equal(y_idx, y_npz)
    ds = load_dataset("mnist", "test", digits=(5, 6), data=data_dir)
    assert len(ds) == 892 + 958 and ds.label_names == ["5", "6"] and ds.labels.sum() == 958
    assert ds.inputs.dtype == np.float32 and ds.inputs.max() <= 1.0


def test_truncated_idx_is_rejected(tmp_path, data_dir):
    raw = gzip.decompress((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(InputError, match="truncated"):
        read_idx(tmp_path / "short.gz")


def _write_acl(root: Path, reviews):
    for split, label, rid, text in reviews:
        d = root / "aclImdb" / split / label
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{rid}_{8 if label == 'pos' else 2}.txt").write_text(text)


def test_imdb_jsonl_tarball_and_folder(data_dir, tmp_path):
    texts, labels = load_imdb("test", data_dir)
    assert len(texts) == 25000 and sum(labels) == 12500 and labels[0] == 0 and labels[-1] == 1
    reviews = [("test", "pos", 10, "great"), ("test", "pos", 2, "fine"), ("test", "neg", 1, "awful"),
               ("train", "neg", 0, "not test")]
    _write_acl(tmp_path / "folder", reviews)
    assert load_imdb("test", tmp_path / "folder") == (["awful", "fine", "great"], [0, 1, 1])
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "folder" / "aclImdb", arcname="aclImdb")
    assert load_imdb("test", tmp_path / "aclImdb_v1.tar.gz") == (["awful", "fine", "great"], [0, 1, 1])


def test_own_labelled_data(tmp_path):
    rows = [{"text": "yes", "label": "spam"}, {"text": "no", "label": "ham"}, {"text": "maybe", "label": "spam"}]
    (tmp_path / "mine.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_dataset(str(tmp_path / "mine.jsonl"), "test")
    assert ds.label_names == ["ham", "spam"] and ds.labels.tolist() == [1, 0, 1] and ds.kind == "text"
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "img" / label).mkdir(parents=True)
        img = Image.new("L", (28, 28), 0)
        img.paste(255, (12, 4, 16, 24))  # a "1": blank images are refused, naming the file
        img.save(tmp_path / "img" / label / "a.png")
    ds = load_dataset(str(tmp_path / "img"), "test")
    assert ds.label_names == ["cat", "dog"] and ds.inputs.shape == (2, 28, 28)


def test_validation_split_is_seeded_and_disjoint(data_dir):
    ds = load_dataset("mnist", "test", digits=(5, 6), data=data_dir)
    a_train, a_val = ds.split(0.1, seed=3)
    b_train, b_val = ds.split(0.1, seed=3)
    assert np.array_equal(a_val.inputs, b_val.inputs) and len(a_val) == 185 and len(a_train) == len(ds) - 185
    _, c_val = ds.split(0.1, seed=4)
    assert not np.array_equal(a_val.inputs, c_val.inputs)
