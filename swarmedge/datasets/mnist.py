"""MNIST from the four canonical idx .gz files or an .npz (x_train, y_train, x_test, y_test)."""

import gzip
import zipfile
from pathlib import Path

import numpy as np

from swarmedge.datasets.sources import RemoteFile, fetch, search_dirs
from swarmedge.errors import InputError

_BASE = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
# sha256 and byte count of the official files (see the MNIST provenance notes in the README)
FILES = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
}
REMOTE = [RemoteFile(f"mnist/{n}", tuple(b + n for b in _BASE), size, sha256=s) for n, (s, size) in FILES.items()]


def read_idx(path: Path) -> np.ndarray:
    """One idx file (gzip-compressed or not) as a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise InputError(f"{path} is truncated: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def load_mnist(split: str, data: Path | None = None, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of the ``train`` or ``test`` split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    if data is not None and Path(data).is_file():  # an explicit .npz
        return _from_npz(Path(data), split)
    prefix = "train" if split == "train" else "t10k"
    wanted = [f for f in REMOTE if f.name.startswith(f"mnist/{prefix}-")]  # only this split's two files
    root = None
    for base in search_dirs(data):  # every format in one place before the next place
        if all((base / f.name).is_file() for f in wanted):
            root = base
            break
        if (base / "mnist.npz").is_file():
            return _from_npz(base / "mnist.npz", split)
    root = root or fetch(wanted, f"MNIST {split}", data, download)
    images = read_idx(root / f"mnist/{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"mnist/{prefix}-labels-idx1-ubyte.gz")
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise InputError(f"MNIST {split} files in {root} disagree: {images.shape} images, {labels.shape} labels")
    return images, labels


def _from_npz(path: Path, split: str):
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would call a text file pickled data
        raise InputError(f"{path} is not an .npz archive: --data takes MNIST (an .npz with x_{split}/y_{split}, "
                         "or its folder) or a folder of class folders of digit images")
    try:
        with np.load(path, allow_pickle=False) as z:
            return z[f"x_{split}"], z[f"y_{split}"]
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path} is not an MNIST .npz with x_{split}/y_{split} ({exc})") from None
