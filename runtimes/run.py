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
        arr = read_image_array(file)
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


def read_image_array(path: Path) -> np.ndarray:
    """(N, 28, 28) images from a .npy or .npz (x_test/images) file, scaled to 0..1."""
    from swarmedge.runtimes.images import to_digit

    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                key = next((k for k in ("x_test", "images", "x") if k in z.files), None)
                if key is None:
                    raise InputError(f"{path} has no x_test/images array")
                arr = z[key]
        else:
            arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read {path} as numpy images ({exc})") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"{path} has shape {arr.shape}; expected (N, 28, 28)")
    notices: list[str] = []
    return np.stack([to_digit(a, f"{path.name}[{i}]", notices) for i, a in enumerate(arr)])
