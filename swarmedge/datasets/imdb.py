"""IMDB reviews (Maas et al. 2011): JSON Lines, the aclImdb tarball, or its extracted folders."""

import re
import tarfile
from pathlib import Path

from swarmedge.datasets.sources import RemoteFile, fetch, search_dirs
from swarmedge.errors import InputError
from swarmedge.runtimes.jsonlines import jsonl_records
from swarmedge.runtimes.textfiles import LABELLED_RECORD, TEXT_INPUTS, decode_text, read_bytes

# the md5 the dataset's users publish; the size is the server's Content-Length, as wget logs and TFDS record it
TARBALL = RemoteFile("aclImdb_v1.tar.gz", ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
                     84_125_825, md5="7c2ac02c03563afcf9b574c7e56c153a")
_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


def read_jsonl(path: Path, expects: str = TEXT_INPUTS) -> tuple[list[str], list]:
    """``(texts, labels)`` of a ``{"text": …, "label": …}``-per-line file, optionally gzipped.

    Read by the one text policy (``swarmedge.runtimes.textfiles``): UTF-8 with or without a
    BOM, LF or CRLF, blank lines skipped. Raises InputError naming the file and line for
    bytes that are not UTF-8, invalid JSON, a line that is not an object, a "text" that is
    missing, null, not a string or empty, or a "label" that is missing or neither a string
    nor an integer; and for a binary file (``expects`` says what the path takes) or one
    with no records.
    """
    records = _records(path, expects)
    return [r["text"] for _, r in records], [r["label"] for _, r in records]


def _records(path: Path, expects: str = TEXT_INPUTS) -> list[tuple[str, dict]]:
    records = jsonl_records(read_bytes(path), str(path), label=True, expects=expects)
    if not records:
        raise InputError(f"{path} holds no records: give one {LABELLED_RECORD} per line")
    return records


def _imdb_jsonl(path: Path) -> tuple[list[str], list[int]]:
    # IMDB files label by index (0 negative, 1 positive): anything else names its line
    records = _records(path)
    for where, r in records:
        if r["label"] not in (0, 1):
            raise InputError(f'{where}: "label" is {r["label"]!r}; IMDB files label negative 0 and positive 1 '
                             "(for your own label names use --data FILE.jsonl instead of imdb)")
    return [r["text"] for _, r in records], [r["label"] for _, r in records]


def _from_tar(path: Path, split: str) -> tuple[list[str], list[int]]:
    rows = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                m = _MEMBER.search(member.name)
                if m and m.group(1) == split and member.isfile():
                    text = decode_text(tar.extractfile(member).read(), f"{path}:{member.name}")
                    rows.append((m.group(2) == "pos", int(m.group(3)), text))
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return _ordered(rows, path)


def _from_folder(root: Path, split: str) -> tuple[list[str], list[int]]:
    rows = []
    for label in ("neg", "pos"):
        for p in (root / split / label).glob("*.txt"):
            if p.name.startswith("."):  # macOS "._*" resource forks and other hidden files
                continue
            m = _MEMBER.search(p.as_posix())
            rows.append((label == "pos", int(m.group(3)) if m else 0, decode_text(read_bytes(p), str(p))))
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
        return _from_tar(p, split) if p.name.endswith((".tar.gz", ".tgz")) else _imdb_jsonl(p)
    for base in search_dirs(data):  # every format in one place before the next place
        for name in (f"imdb_{split}.jsonl.gz", f"imdb_{split}.jsonl"):
            if (base / name).is_file():
                return _imdb_jsonl(base / name)
        for root in (base / "aclImdb", base):
            if (root / split / "pos").is_dir():
                return _from_folder(root, split)
        if (base / TARBALL.name).is_file():
            return _from_tar(base / TARBALL.name, split)
    d = fetch([TARBALL], "IMDB", data, download)
    return _from_tar(d / TARBALL.name, split)
