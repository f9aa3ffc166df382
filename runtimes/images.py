"""Images -> boids, in numpy: decode, make 28x28 grey, threshold, map pixels into the habitat."""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError

SIZE = 28


def load_image(path: Path, notices: list[str] | None = None) -> np.ndarray:
    """A (28, 28) float32 image on a 0..1 scale, white digit on black, from PNG/JPEG/npy.

    Anything else is converted with a notice appended to ``notices``: colour to grey,
    other sizes resized, dark-on-light inverted (MNIST digits are light on dark).
    """
    path = Path(path)
    notices = notices if notices is not None else []
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read {path} as a numpy array ({exc}); save it with np.save") from None
        return to_digit(arr, str(path), notices)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a base dependency
        raise InputError("reading PNG/JPEG needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "1", "I;16", "I", "F"):
                notices.append(f"{path.name}: converted {img.mode} to grey")
            grey = img.convert("L")
            if grey.size != (SIZE, SIZE):
                notices.append(f"{path.name}: resized {grey.size[0]}x{grey.size[1]} to {SIZE}x{SIZE}")
                grey = grey.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
            arr = np.asarray(grey, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"cannot decode {path} as an image ({exc}); use PNG, JPEG or .npy") from None
    return _light_on_dark(arr, path.name, notices)


def to_digit(arr: np.ndarray, name: str, notices: list[str]) -> np.ndarray:
    """Validate and normalise an array image (28x28, 0..1 or 0..255)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        notices.append(f"{name}: averaged {arr.shape[-1]} channels to grey")
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] != 1 else arr[..., 0]
    if arr.shape != (SIZE, SIZE):
        raise InputError(f"{name} has shape {arr.shape}; expected a {SIZE}x{SIZE} grey image")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} has dtype {arr.dtype}; expected numbers")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite pixels")
    if arr.min() < 0:
        raise InputError(f"{name} has negative pixels; expected 0..1 or 0..255")
    if arr.max() > 1.0:
        if arr.max() > 255:
            raise InputError(f"{name} has pixels above 255; expected 0..1 or 0..255")
        arr = arr / 255.0
    return _light_on_dark(arr, name, notices)


def _light_on_dark(arr: np.ndarray, name: str, notices: list[str]) -> np.ndarray:
    if arr.mean() > 0.5:
        notices.append(f"{name}: inverted a dark digit on a light background")
        arr = 1.0 - arr
    return arr


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
