"""IMDB reviews (Maas et al. 2011): JSON Lines, the aclImdb tarball, or its extracted folders."""

import gzip
import json
import re
import tarfile
from pathlib import Path

from swarmedge.datasets.sources import RemoteFile, fetch, search_dirs
from swarmedge.errors import InputError

TARBALL = RemoteFile("aclImdb_v1.tar.gz", ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
                     md5="7c2ac02c03563afcf9b574c7e56c153a")  # the md5 the dataset's users publish
_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


def read_jsonl(path: Path) -> tuple[list[str], list[int]]:
    """``{"text": …, "label": 0|1}`` per line, optionally gzipped."""
    opener = gzip.open if str(path).endswith(".gz") else open
    texts, labels = [], []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "label" not in row:
                    raise InputError(f"{path}:{n}: expected {{\"text\": str, \"label\": …}}")
                texts.append(row["text"])
                labels.append(row["label"])
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return texts, labels


def _from_tar(path: Path, split: str) -> tuple[list[str], list[int]]:
    rows = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                m = _MEMBER.search(member.name)
                if m and m.group(1) == split and member.isfile():
                    text = tar.extractfile(member).read().decode("utf-8")
                    rows.append((m.group(2) == "pos", int(m.group(3)), text))
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return _ordered(rows, path)


def _from_folder(root: Path, split: str) -> tuple[list[str], list[int]]:
    rows = []
    for label in ("neg", "pos"):
        for p in (root / split / label).glob("*.txt"):
            m = _MEMBER.search(p.as_posix())
            rows.append((label == "pos", int(m.group(3)) if m else 0, p.read_text(encoding="utf-8")))
    return _ordered(rows, root)


def _ordered(rows, where) -> tuple[list[str], list[int]]:
    if not rows:
        raise InputError(f"{where} holds no aclImdb reviews")
    rows.sort(key=lambda r: (r[0], r[1]))  # negatives first, then by review id: the JSONL order
    return [r[2] for r in rows], [int(r[0]) for r in rows]


def load_imdb(split: str, data: Path | None = None, download: bool = True) -> tuple[list[str], list[int]]:
    """(texts, labels) of the official ``train`` or ``test`` split; label 1 = positive."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    if data is not None and Path(data).is_file():
        p = Path(data)
        return _from_tar(p, split) if p.name.endswith((".tar.gz", ".tgz")) else read_jsonl(p)
    for base in search_dirs(data):  # every format in one place before the next place
        for name in (f"imdb_{split}.jsonl.gz", f"imdb_{split}.jsonl"):
            if (base / name).is_file():
                return read_jsonl(base / name)
        for root in (base / "aclImdb", base):
            if (root / split / "pos").is_dir():
                return _from_folder(root, split)
        if (base / TARBALL.name).is_file():
            return _from_tar(base / TARBALL.name, split)
    d = fetch([TARBALL], "IMDB", data, download)
    return _from_tar(d / TARBALL.name, split)
