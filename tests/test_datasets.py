"""Data sets: the formats, the search order, and verified downloads from a loopback server."""

import gzip
import http.server
import json
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import swarmedge.datasets.mnist as mnist
from swarmedge.datasets import load_dataset
from swarmedge.datasets.imdb import load_imdb
from swarmedge.datasets.mnist import load_mnist, read_idx
from swarmedge.datasets.sources import RemoteFile
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


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/cut/"):  # announces the full length, sends half, hangs up
            data = (Path(self.directory) / self.path[5:]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, data_dir):
    """A real HTTP server on 127.0.0.1 serving shared/data files, a corrupted and a truncated copy."""
    root = tmp_path / "www"
    root.mkdir()
    for f in (data_dir / "mnist").iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    bad = bytearray((root / "t10k-labels-idx1-ubyte.gz").read_bytes())
    bad[100] ^= 0xFF
    (root / "corrupt.gz").write_bytes(bytes(bad))
    (root / "short.gz").write_bytes(bytes(bad[: len(bad) // 2]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    monkeypatch.delenv("SWARMEDGE_DATA", raising=False)
    monkeypatch.setenv("SWARMEDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _remote(urls_for):
    return [RemoteFile(f.name, tuple(urls_for(f.name.split("/")[-1])), sha256=f.sha256) for f in mnist.REMOTE]


def test_download_verifies_and_caches(server, empty_places, monkeypatch):
    # the first mirror serves a corrupt file, the second one truncates, the third is good
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: [server + "corrupt.gz", server + "cut/" + n, server + n]))
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and y[0] == 7
    cached = sorted(p.name for p in (empty_places / "mnist").iterdir())
    assert cached == sorted(f.name.split("/")[-1] for f in mnist.REMOTE)  # no .part files left
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: ["http://127.0.0.1:9/" + n]))
    assert load_mnist("test")[0].shape == (10000, 28, 28)  # now from the cache, no network


@pytest.mark.parametrize("bad", ["corrupt.gz", "short.gz", "cut/t10k-labels-idx1-ubyte.gz"])
def test_bad_downloads_are_rejected_and_leave_nothing(server, empty_places, monkeypatch, bad):
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: [server + bad]))
    with pytest.raises(InputError, match="could not download MNIST"):
        load_mnist("test")
    leftovers = [p for p in empty_places.rglob("*") if p.is_file()]
    assert leftovers == []


def test_offline_and_missing_says_where_it_looked(empty_places, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: ["http://127.0.0.1:9/" + n]))
    with pytest.raises(InputError) as err:
        load_mnist("test", data=tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and "SWARMEDGE_DATA" in str(err.value) and str(empty_places) in str(err.value)
