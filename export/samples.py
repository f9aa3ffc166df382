"""Inputs for calibration and for the int8-vs-fp32 check: the user's data, or synthetic.

Raw inputs go through the device's own preprocessing (``swarmedge.runtimes``), so the
quantizer calibrates on exactly what the device will feed the model.
"""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.feeds import Samples


def load_samples(path: Path, kind: str) -> Samples:
    """Texts (.txt one per line, .jsonl[.gz] with "text") or digit images (.npy, .npz, a folder)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"calibration data not found: {path}")
    name = path.name.lower()
    if kind == "text":
        from swarmedge.runtimes.textfiles import TEXT_RECORD, read_texts_from

        # The device's reading and naming rule: the same texts as `run --file` gives.
        expects = f"text calibration data is texts: one per line (.txt) or {TEXT_RECORD} per line (.jsonl)"
        notices: list[str] = []
        texts = read_texts_from(path, expects=expects, notices=notices)[0]
        if notices:  # JSON Lines under another name: calibrating on raw JSON would skew the scales
            raise InputError(notices[0].replace("is classified as text", "would be calibrated on as text"))
        return Samples(texts, str(path))
    # The device's own reading (swarmedge.runtimes.images): calibration sees the digits `run` sees.
    from swarmedge.runtimes.images import image_files, load_images, read_image_array

    if path.is_dir():
        # counts: a .npy of several digits in the folder is read whole (no labels to repeat here)
        return Samples(load_images(image_files(path, recursive=True), source=str(path), counts=[]), str(path))
    if not name.endswith((".npy", ".npz")):
        raise InputError(f"{path}: image calibration data must be a .npy/.npz of digits "
                         "(N x 28 x 28 or N x 784) or a folder of images")
    return Samples(read_image_array(path, blank="zeros"), str(path))  # blank digits: feeds_for skips them


def synthetic_samples(kind: str, n: int, rng: np.random.Generator, vocab: list[str] | None = None) -> Samples:
    """Inputs for when the user gives no data: random word sequences, or rendered digits."""
    if kind == "text":
        words = [w for w in (vocab or []) if w.isalpha()] or ["film", "good", "bad", "plot", "actor"]
        texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 400)))) for _ in range(n)]
        return Samples(texts, "synthetic: random words from the vocabulary")
    return Samples(render_digits(rng.integers(0, 10, size=n), rng), "synthetic: digits rendered with Pillow's font")


def render_digits(digits, rng: np.random.Generator) -> np.ndarray:
    """(N, 28, 28) light-on-dark images of the given digits, drawn with Pillow's built-in font
    at random sizes, offsets and slants: digit-like inputs that need no dataset."""
    from PIL import Image, ImageDraw, ImageFont

    out = np.zeros((len(digits), 28, 28), dtype=np.float32)
    for i, d in enumerate(digits):
        size = int(rng.integers(18, 25))
        font = ImageFont.load_default(size=size)
        img = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(img)
        left, top, right, bottom = draw.textbbox((0, 0), str(int(d)), font=font, stroke_width=1)
        x = (28 - (right - left)) / 2 - left + rng.uniform(-2, 2)
        y = (28 - (bottom - top)) / 2 - top + rng.uniform(-2, 2)
        draw.text((x, y), str(int(d)), fill=255, font=font, stroke_width=1, stroke_fill=255)
        img = img.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
        out[i] = np.asarray(img, dtype=np.float32) / 255.0
    return out
