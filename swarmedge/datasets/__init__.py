"""Data sets for training and evaluation, in numpy (no torch): MNIST, IMDB, your own.

>>> from swarmedge.datasets import load_dataset  # doctest: +SKIP
>>> ds = load_dataset("mnist", "test", digits=(5, 6))  # doctest: +SKIP
>>> len(ds), ds.label_names  # doctest: +SKIP
(1850, ['5', '6'])
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.textfiles import LABELLED_RECORD

# What --data takes, said when it is given an image, an array or another binary file.
LABELLED_INPUTS = (f"--data takes mnist, imdb, a .jsonl of {LABELLED_RECORD} lines, "
                   "or a folder of images in one sub-folder per label (e.g. digits/5/a.png)")


BUILTIN = {"mnist": "images", "imdb": "text"}  # the built-in data sets, and what they hold


def builtin_in(folder: Path, kind: str | None = None) -> str | None:
    """The built-in data set whose files ``folder`` holds, as `--data FOLDER` means it:
    ``mnist`` (mnist.npz, or MNIST's idx files under mnist/), ``imdb`` (imdb_train/test.jsonl[.gz],
    aclImdb/ or its tarball); None when it holds neither. A folder holding both is read as
    the one of ``kind`` ("images" or "text"), the kind the model reads.
    """
    found = []
    if (folder / "mnist.npz").is_file() or any((folder / "mnist").glob("*-idx?-ubyte.gz")):
        found.append("mnist")
    if (any(folder.glob("imdb_*.jsonl")) or any(folder.glob("imdb_*.jsonl.gz"))
            or (folder / "aclImdb").is_dir() or (folder / "aclImdb_v1.tar.gz").is_file()):
        found.append("imdb")
    if len(found) > 1 and kind is not None:
        found = [n for n in found if BUILTIN[n] == kind]
    return found[0] if found else None


def resolve_data(data: str, data_dir: Path | None = None, kind: str | None = None) -> tuple[str, Path | None]:
    """What ``--data`` names, as (data set, folder to read it from): a built-in name (any case)
    with ``data_dir``; a folder holding a built-in data set's files (``builtin_in``) as that data
    set read from there; anything else as the user's own labelled data (``load_labelled``)."""
    if data.lower() in BUILTIN and not Path(data).exists():
        return data.lower(), data_dir
    folder = Path(data)
    if folder.is_dir():
        found = builtin_in(folder, kind)
        if found is not None:
            return found, folder
    return data, data_dir


@dataclass
class Dataset:
    inputs: object  # list[str] of texts, or (N, 28, 28) float32 images in 0..1
    labels: np.ndarray  # (N,) int64 class indices
    label_names: list[str]
    kind: str  # "text" or "images"
    source: str
    notes: list[str] = field(default_factory=list)  # what reading the data had to assume, for the user

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Dataset":
        idx = np.asarray(idx)
        inputs = [self.inputs[i] for i in idx] if isinstance(self.inputs, list) else self.inputs[idx]
        return Dataset(inputs, self.labels[idx], self.label_names, self.kind, self.source, list(self.notes))

    def split(self, fraction: float, seed: int) -> tuple["Dataset", "Dataset"]:
        """A seeded (rest, held-out) split, e.g. train/validation carved from train."""
        order = np.random.default_rng(seed).permutation(len(self))
        n = int(round(len(self) * fraction))
        return self.subset(np.sort(order[n:])), self.subset(np.sort(order[:n]))


def load_dataset(name: str, split: str, *, digits=None, data: Path | None = None, download: bool = True) -> Dataset:
    """``mnist`` (restricted to ``digits``), ``imdb``, or a path to your own labelled data:
    a JSONL file of {"text", "label"}, or a folder of images in one sub-folder per label."""
    if name == "mnist":
        from swarmedge.datasets.mnist import load_mnist

        x, y = load_mnist(split, data, download)
        digits = tuple(range(10)) if digits is None else tuple(digits)
        keep = np.isin(y, digits)
        lookup = {d: i for i, d in enumerate(digits)}
        labels = np.array([lookup[int(v)] for v in y[keep]], dtype=np.int64)
        return Dataset(x[keep].astype(np.float32) / 255.0, labels, [str(d) for d in digits], "images", f"MNIST {split}")
    if name == "imdb":
        from swarmedge.datasets.imdb import load_imdb

        texts, labels = load_imdb(split, data, download)
        return Dataset(texts, np.array(labels, dtype=np.int64), ["negative", "positive"], "text", f"IMDB {split}")
    return load_labelled(Path(name))


def load_labelled(path: Path) -> Dataset:
    """Your own data: JSONL texts with labels, or ``folder/<label>/*.png`` images."""
    if not path.exists():
        raise InputError(f"data not found: {path} (use mnist, imdb, a .jsonl of texts or a folder of images)")
    if path.is_dir():
        # Read by the device's own image code: the same digits as `run --image` gives, with
        # hidden files/folders skipped and other non-image files skipped with a note.
        from swarmedge.runtimes.images import JUNK_DIRS, image_files, load_images

        notes: list[str] = []
        classes = sorted(p.name for p in path.iterdir()
                         if p.is_dir() and not p.name.startswith(".") and p.name not in JUNK_DIRS)
        files = [(f, i) for i, c in enumerate(classes) for f in image_files(path / c, recursive=True, notices=notes)]
        if not files:
            raise InputError(f"{path} needs one sub-folder of images per label (e.g. {path}/5/a.png)")
        counts: list[int] = []  # a .npy in a class folder may hold several digits of that class
        images = load_images([f for f, _ in files], notes, source=str(path), counts=counts)
        labels = np.repeat(np.array([i for _, i in files], dtype=np.int64), counts)
        return Dataset(images, labels, classes, "images", str(path), notes)
    from swarmedge.datasets.imdb import read_jsonl
    from swarmedge.runtimes.jsonlines import is_jsonl, jsonl_lookalike, lookalike_hint
    from swarmedge.runtimes.textfiles import read_bytes, text_lines

    if not is_jsonl(path):  # the one naming rule: one text per line, which carries no labels
        texts = text_lines(read_bytes(path), str(path), LABELLED_INPUTS)[0]
        fix = lookalike_hint(path) if jsonl_lookalike(texts) else f"give {LABELLED_RECORD} per line in a .jsonl"
        raise InputError(f"{path} is read one text per line (only .jsonl/.ndjson/.json are JSON Lines), "
                         f"which gives no labels; {fix}")
    texts, raw = read_jsonl(path, expects=LABELLED_INPUTS)
    def order(name: str):  # numeric labels in numeric order, then the rest alphabetically
        numeric = name.lstrip("-").isdigit()
        return (not numeric, int(name) if numeric else 0, name)

    names = sorted({str(v) for v in raw}, key=order)
    index = {n: i for i, n in enumerate(names)}
    return Dataset(texts, np.array([index[str(v)] for v in raw], dtype=np.int64), names, "text", str(path))
