"""Digit images -> 28x28 MNIST-framed grey -> boids, in numpy and Pillow (no torch).

Every path that reads a digit comes through here, so an input gives the same digit whichever
command it came by: ``run --image`` and ``visualize`` (:func:`load_image`), image folders in
``eval``/``compare``/``train`` and ``--calibration`` (:func:`image_files` + :func:`load_images`),
and arrays from ``run --file``, ``--calibration`` or the Python API (:func:`read_image_array`,
:func:`digits_from_array`). The steps: decode as a viewer shows it (``image_decode.py``),
read array layouts (``image_arrays.py``), then frame the digit as MNIST was (``framing.py``).

Notices (what was done to an input, for the user) go to the ``notices`` list when one is
given, else to the ``swarmedge.images`` logger, which Python prints on stderr by default.
"""

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.framing import MIN_CONTRAST, SIZE, NotADigit, mnist_digit
from swarmedge.runtimes.image_arrays import as_digit_stack, load_array, open_stack, scaled, value_scale
from swarmedge.runtimes.image_decode import decode_image, image_suffixes

ARRAY_SUFFIXES = frozenset({".npy", ".npz"})
# Folders that tools leave behind and that never hold data (macOS zips; dot-folders are skipped too).
JUNK_DIRS = frozenset({"__MACOSX", "__pycache__"})

_SUMMARY = {  # step kind -> how a folder's or array's one-line notice counts it
    "exif": "EXIF-rotated", "frames": "first frame used", "alpha": "transparency on white",
    "mode": "colour to grey", "invert": "inverted", "levels": "background removed",
    "frame": "framed like MNIST", "sheet": "digit read on a light sheet", "edge": "ink at the sheet's edge",
    "scale": "scale read", "skip": "not a digit (zeros)",
}
_BLANK = f"no pixel stands out from the background by {MIN_CONTRAST:.0%} or more, so there is nothing to classify"
_log = logging.getLogger("swarmedge.images")


def load_image(path: Path, notices: list[str] | None = None) -> np.ndarray:
    """One digit from an image file (PNG, JPEG, any format Pillow decodes) or a one-image .npy/.npz.

    Returns (28, 28) float32 in 0..1, light digit on black, framed as MNIST was (see
    ``framing.py``). What was done (EXIF rotation, mode conversion, inversion, background
    removal, framing) is told in one notice line; nothing is said for an MNIST-ready digit.
    Raises InputError (one line naming the file) for a missing, undecodable, truncated,
    oversized or blank image, a folder or other non-file, or an array file holding other than
    one image.
    """
    path = _regular_file(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        digits = read_image_array(path, notices)
        if len(digits) != 1:
            raise InputError(f"{path} holds {len(digits)} images; one image is wanted here "
                             "(with run, pass the file with --file to classify them all)")
        return digits[0]
    digit, steps = _digit_from_file(path)
    if steps:
        _tell(notices, f"{path.name}: {'; '.join(text for _, text in steps)}")
    return digit


def load_images(paths, notices: list[str] | None = None, source: str | None = None,
                counts: list[int] | None = None) -> np.ndarray:
    """(N, 28, 28) float32 in 0..1 from image files, each read as by :func:`load_image`.

    With ``source`` (the folder the files are in) the notices are one line of counts for all
    the files, and array files are named by their path relative to ``source`` (``5/a.npy``).
    An array file there may hold several digits when the caller passes a ``counts`` list,
    which gets the number of digits each file gave (to repeat a folder's label); without
    it, such a file is refused. Without ``source``, one notice line per file that needed
    any step, and each .npy/.npz must hold one digit. Raises InputError naming the first
    file that cannot be read, or when ``paths`` is empty.
    """
    paths = [_regular_file(p) for p in paths]
    if not paths:
        raise InputError(f"{source or 'the input'} holds no images")
    if source is None:
        return np.stack([load_image(p, notices) for p in paths])
    digits, per_file, counts_by_kind = [], [], Counter()
    for p in paths:
        if p.suffix.lower() in ARRAY_SUFFIXES:
            name = _relative(p, source)
            arr = digits_from_array(load_array(p), name, notices)
            if len(arr) != 1 and counts is None:
                raise InputError(f"{p} holds {len(arr)} images; here each file must be one image: "
                                 "save one .npy (or PNG) per digit")
            digits.extend(arr)
            per_file.append(len(arr))
            continue
        digit, steps = _digit_from_file(p)
        counts_by_kind.update({kind for kind, _ in steps})
        digits.append(digit)
        per_file.append(1)
    _tell_counts(notices, source, len(paths), counts_by_kind)
    if counts is not None:
        counts.extend(per_file)
    return np.stack(digits)


def _relative(path: Path, folder) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def read_image_array(path: Path, notices: list[str] | None = None, blank: str = "error") -> np.ndarray:
    """(N, 28, 28) float32 in 0..1 from a .npy, or a .npz (``x_test``/``x_train``/``images``/``x``).

    Layouts and scales as :func:`digits_from_array`; ``blank`` likewise. Raises InputError
    for a missing or unreadable file, a folder or other non-file, and for everything
    :func:`digits_from_array` refuses.
    """
    path = _regular_file(path)
    return digits_from_array(load_array(path), path.name, notices, blank)


def digits_from_array(arr, name: str = "array", notices: list[str] | None = None,
                      blank: str = "error") -> np.ndarray:
    """(N, 28, 28) float32 in 0..1, each digit light on black and framed as MNIST was.

    ``arr``: (N, 784), (N, 28, 28), (N, 1, 28, 28), (N, 28, 28, 1), or one image as (28, 28),
    (784,) or (28, 28, 1); uint8 0..255 or float 0..1 (floats up to 255 are read as 0..255).
    MNIST digits come back unchanged. A blank image (no contrast) raises InputError naming
    ``name[i]`` when ``blank="error"``, or comes back all zeros when ``blank="zeros"`` (for
    calibration, which skips them). Other layouts and dtypes raise InputError naming the
    accepted ones.
    """
    stack, array_steps = as_digit_stack(arr, name)
    counts: Counter = Counter()
    out = frame_stack(stack, name, counts, blank)
    _tell_counts(notices, name, len(out), counts, [text for _, text in array_steps])
    return out


def frame_stack(stack: np.ndarray, name: str, counts: Counter, blank: str = "error", first: int = 0) -> np.ndarray:
    """(N, 28, 28) float32 digits framed as MNIST was, from an (N, 28, 28) float32 ``stack`` in
    0..1 whose first digit is ``name[first]``; the steps taken are counted into ``counts``.
    ``blank`` as for :func:`digits_from_array`; raises InputError naming ``name[i]``."""
    out = np.empty_like(stack)
    for i, image in enumerate(stack):
        try:
            digit, steps = mnist_digit(image)
        except NotADigit as exc:
            if blank != "zeros":
                raise InputError(f"{name}[{first + i}] {exc}") from None
            digit, steps = None, [("skip", "")]
        if digit is None:
            if blank != "zeros":
                raise InputError(f"{name}[{first + i}] is blank: {_BLANK}")
            digit = np.zeros((SIZE, SIZE), np.float32)
        counts.update({kind for kind, _ in steps})
        out[i] = digit
    return out


def stream_array(path: Path, notices: list[str] | None = None, size: int = 256):
    """``(first index, (n, 28, 28) float32 digits)`` of a .npy/.npz file, ``size`` at a time,
    each digit read as :func:`read_image_array` reads it; a .npy is memory mapped, so only one
    chunk is in memory, and its value scale is decided for the whole array first. One notice
    at the end counts the steps taken. Raises InputError as :func:`read_image_array` does."""
    path = _regular_file(path)
    stack = open_stack(path)
    divisor, array_steps = value_scale(stack, path.name)
    counts: Counter = Counter()
    for start in range(0, len(stack), size):
        yield start, frame_stack(scaled(stack[start:start + size], divisor), path.name, counts, first=start)
    _tell_counts(notices, path.name, len(stack), counts, [text for _, text in array_steps])


def stream_folder(folder: Path, notices: list[str] | None = None, size: int = 256):
    """``(path, (28, 28) float32 digit)`` lists of the images in ``folder`` and its sub-folders
    (:func:`image_files`, sorted), ``size`` at a time, each read as :func:`load_image` reads it.
    One notice at the end counts the steps taken, instead of one line per image. Raises
    InputError naming the first file that cannot be read, or when the folder holds no image."""
    files = image_files(folder, recursive=True, notices=notices)
    if not files:
        raise InputError(f"{folder} holds no images (PNG, JPEG, any format Pillow decodes, or .npy)")
    counts: Counter = Counter()
    for start in range(0, len(files), size):
        part = []
        for p in files[start:start + size]:
            if p.suffix.lower() in ARRAY_SUFFIXES:
                part.append((p, load_image(p, notices)))
                continue
            digit, steps = _digit_from_file(p)
            counts.update({kind for kind, _ in steps})
            part.append((p, digit))
        yield part
    _tell_counts(notices, str(folder), len(files), counts)


def image_files(folder: Path, recursive: bool = False, notices: list[str] | None = None) -> list[Path]:
    """The image and .npy files in ``folder`` (sorted; in sub-folders too when ``recursive``).

    Hidden files and folders (any name starting with a dot: .DS_Store, .ipynb_checkpoints)
    and ``__MACOSX`` are skipped silently; other files that are not images (README.txt,
    labels.csv, Thumbs.db) are skipped with one notice naming them. An image that fails to
    decode is not skipped: reading it raises an error naming it.
    """
    folder = Path(folder)
    suffixes = image_suffixes() | {".npy"}
    found = folder.rglob("*") if recursive else folder.iterdir()
    files, others = [], []
    for f in sorted(found):
        parts = f.relative_to(folder).parts
        if any(p.startswith(".") or p in JUNK_DIRS for p in parts) or not f.is_file():
            continue
        (files if f.suffix.lower() in suffixes else others).append(f)
    if others:
        shown = ", ".join(str(f.relative_to(folder)) for f in others[:3]) + (", ..." if len(others) > 3 else "")
        _tell(notices, f"{folder}: skipped {len(others)} file(s) that are not images ({shown})")
    return files


def _regular_file(path) -> Path:
    """``path`` as a Path; raises InputError saying what it is when it exists but is no regular
    file (a missing one is left to the readers, whose message names the file kind)."""
    path = Path(path)
    if path.is_dir():  # image folders are read by eval, compare and train (image_files), not here
        raise InputError(f"{path} is a folder, not an image: pass its image files (e.g. {path}/*.png)")
    if path.exists() and not path.is_file():
        raise InputError(f"{path} is not a regular file (a device, pipe or socket): pass an image file")
    return path


def _digit_from_file(path: Path):
    picture = decode_image(path)
    try:
        digit, steps = mnist_digit(picture.grey, picture.alpha)
    except NotADigit as exc:
        raise InputError(f"{path} {exc}") from None
    if digit is None:
        raise InputError(f"{path} is blank: {_BLANK}")
    return digit, picture.steps + steps


def _tell(notices: list[str] | None, line: str) -> None:
    if notices is None:
        _log.warning("%s", line)  # the CLI's handler adds "swarmedge: note: "
    else:
        notices.append(line)


def _tell_counts(notices, source: str, n: int, counts: Counter, extra: list[str] = ()) -> None:
    done = [f"{_SUMMARY[k]} {c}" for k, c in counts.items()]
    if done or extra:
        _tell(notices, f"{source}: {n} image(s): {', '.join([*extra, *done])}")


def images_to_boids(images: np.ndarray, threshold: float = 0.5, habitat: float = 10.0):
    """(B, 28, 28) images -> boids (B, N, 2) float32 and lengths (B,) int64.

    Boids are the (row, col) coordinates of pixels above ``threshold`` in row-major order,
    mapped by ``c / 27 * 2h - h`` into (-h, h) and zero-padded to the largest count.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise InputError(f"images must have shape (B, {SIZE}, {SIZE}), got {images.shape}")
    masks = images > threshold
    lengths = masks.reshape(len(images), -1).sum(axis=1)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise InputError(f"image {empty[0] + 1} has no pixel brighter than {threshold}: nothing to classify")
    boids = np.zeros((len(images), int(lengths.max()), 2), dtype=np.float32)
    for i, mask in enumerate(masks):
        coords = np.argwhere(mask).astype(np.float32)  # row-major (row, col)
        boids[i, : len(coords)] = coords / (SIZE - 1) * (2 * habitat) - habitat
    return boids, lengths.astype(np.int64)
