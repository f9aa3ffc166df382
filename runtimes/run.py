"""``swarmedge run``: gather inputs from texts, files, images or stdin, and classify them."""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.classifier import Classifier, Prediction


def classify(
    bundle, *, texts=(), file: Path | None = None, images=(), stdin_lines=None,
    precision: str | None = None, threads: int | None = None,
) -> tuple[list[tuple[str, Prediction]], list[str]]:
    """Classify whichever inputs were given; return (input name, prediction) pairs and notices."""
    clf = Classifier(bundle, precision=precision, threads=threads)
    notices: list[str] = []
    if clf.kind == "text":
        if images:
            raise InputError("this bundle classifies text: pass --text, --file or -, not --image")
        items = list(texts) or (read_texts(file) if file else list(stdin_lines or []))
        if stdin_lines is not None and not items:
            raise InputError("stdin held no text: pipe one text per line")
        return list(zip(items, clf.classify_texts(items))), notices
    if texts or stdin_lines is not None:
        raise InputError("this bundle classifies digit images: pass --image or --file, not text")
    if file:
        arr = read_image_array(file, notices)
        names = [f"{file.name}[{i}]" for i in range(len(arr))]
    else:
        from swarmedge.runtimes.images import load_image

        arr = np.stack([load_image(p, notices) for p in images])
        names = [str(p) for p in images]
    return list(zip(names, clf.classify_images(arr))), notices


def read_texts(path: Path) -> list[str]:
    """One text per line (.txt) or one {"text": …} object per line (.jsonl)."""
    import json

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".jsonl":
        try:
            lines = [json.loads(line)["text"] for line in lines if line.strip()]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: each line must be a JSON object with a \"text\" ({exc})") from None
    texts = [t for t in lines if t.strip()]
    if not texts:
        raise InputError(f"{path} holds no text")
    return texts


def read_image_array(path: Path, notices: list[str] | None = None) -> np.ndarray:
    """(N, 28, 28) float32 digits in 0..1 from a .npy or .npz file, framed as MNIST was.

    Accepts (N, 784), (N, 28, 28), (N, 1, 28, 28), (N, 28, 28, 1) and single images, uint8
    0..255 or float 0..1; see ``swarmedge.runtimes.images.read_image_array``, which this is.
    """
    from swarmedge.runtimes.images import read_image_array as read

    return read(path, notices)
