"""``swarmedge run``: gather inputs from texts, files, images or stdin, and classify them."""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.classifier import Classifier, Prediction
from swarmedge.runtimes.text import MOSTLY_UNKNOWN
from swarmedge.runtimes.textfiles import TEXT_RECORD, check_text, jsonl_lookalike, read_texts_from, text_lines

# What a text bundle takes, said when it is given an image, an array or another binary file.
TEXT_BUNDLE_INPUTS = "this bundle classifies text: pass texts with --text, a .txt/.jsonl with --file, or stdin"


def classify(
    bundle, *, texts=(), file: Path | None = None, images=(), stdin: bytes | None = None,
    precision: str | None = None, threads: int | None = None,
) -> tuple[list[tuple[str, Prediction]], list[str]]:
    """Classify whichever inputs were given; return (input name, prediction) pairs and notices.

    ``stdin`` is the raw bytes piped in (``swarmedge run BUNDLE -``), read with the same
    policy as a ``.txt`` file. Raises InputError for inputs the bundle cannot take.
    """
    clf = Classifier(bundle, precision=precision, threads=threads)
    notices: list[str] = []
    if clf.kind == "text":
        if images:
            raise InputError("this bundle classifies text: pass --text, --file or -, not --image")
        if texts:
            wheres = ["--text" if len(texts) == 1 else f"--text {i}" for i in range(1, len(texts) + 1)]
            items = [check_text(t, w) for t, w in zip(texts, wheres)]
        elif file:
            items, wheres = read_texts_from(file, expects=TEXT_BUNDLE_INPUTS, notices=notices)
        else:
            items, wheres = text_lines(stdin or b"", "stdin", TEXT_BUNDLE_INPUTS)
            if not items:
                raise InputError("stdin held no text: pipe one text per line")
            if jsonl_lookalike(items):
                notices.append(f"every line on stdin is a {TEXT_RECORD} object, but stdin is read one text per line, "
                               "so each whole line is classified as text; pass the file with --file FILE.jsonl")
        preds = clf.classify_texts(items)
        notices += [n for n in (guessing_notice(w, p) for w, p in zip(wheres, preds)) if n]
        return list(zip(items, preds)), notices
    if texts or stdin is not None:
        raise InputError("this bundle classifies digit images: pass --image or --file, not text")
    if file:
        if Path(file).suffix.lower() not in (".npy", ".npz"):
            raise InputError(_not_an_array(Path(file)))
        arr = read_image_array(file, notices)
        names = [f"{file.name}[{i}]" for i in range(len(arr))]
    else:
        from swarmedge.runtimes.images import load_image

        arr = np.stack([load_image(p, notices) for p in images])
        names = [str(p) for p in images]
    return list(zip(names, clf.classify_images(arr))), notices


def read_texts(path: Path) -> list[str]:
    """The texts of a file: one {"text": …} object per line (JSON Lines: .jsonl, .ndjson, .json,
    each optionally .gz) or one text per line (any other name, blank lines skipped), read as
    UTF-8 with or without a BOM, LF or CRLF.

    Raises InputError naming the file and line for undecodable bytes, invalid JSON or a
    record whose "text" is missing, not a string or empty, and for a file with no text.
    """
    return read_texts_from(path, expects=TEXT_BUNDLE_INPUTS)[0]


def guessing_notice(where: str, pred: Prediction) -> str | None:
    """A notice naming ``where`` when the model saw (almost) nothing it knows in the text, so
    its answer is a guess: no tokens at all, or at least ``MOSTLY_UNKNOWN`` of them [UNK]."""
    if pred.tokens_total == 0:
        return f"{where}: the tokenizer found no words in it, so this prediction is a guess"
    if pred.unknown_share is not None and pred.unknown_share >= MOSTLY_UNKNOWN:
        return (f"{where}: {pred.unknown_share:.0%} of its tokens are unknown to the model's vocabulary, "
                "so this prediction is a guess (another language, or mostly emoji or symbols?)")
    return None


def _not_an_array(file: Path) -> str:
    from swarmedge.runtimes.images import image_suffixes

    if file.suffix.lower() in image_suffixes():
        return f"{file} is an image: --file on a digit bundle takes a .npy/.npz array; pass it with --image {file}"
    return (f"{file}: --file on a digit bundle takes a .npy/.npz array of digits (N x 28 x 28 or N x 784); "
            "pass image files with --image")


def read_image_array(path: Path, notices: list[str] | None = None) -> np.ndarray:
    """(N, 28, 28) float32 digits in 0..1 from a .npy or .npz file, framed as MNIST was.

    Accepts (N, 784), (N, 28, 28), (N, 1, 28, 28), (N, 28, 28, 1) and single images, uint8
    0..255 or float 0..1; see ``swarmedge.runtimes.images.read_image_array``, which this is.
    """
    from swarmedge.runtimes.images import read_image_array as read

    return read(path, notices)
