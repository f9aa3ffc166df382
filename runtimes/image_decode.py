"""Image files -> one grey picture, as an image viewer shows it (Pillow + numpy, no torch).

Orientation comes from the EXIF tag, every common mode is read at its own bit depth, and
transparency is composited on white. Framing the digit is ``framing.py``'s job.
"""

import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError

# A 64-megapixel phone photo still opens; beyond this a file is a decompression bomb or
# not a digit (the decoded grey copy alone would take over 256 MB).
MAX_PIXELS = 64_000_000
MAX_SIDE = 32_768
# Framing needs about 20 px of digit: pictures are shrunk to this side first, for speed.
WORK_SIDE = 1024

# Formats Pillow lists but cannot decode by itself (stubs needing a handler or an external tool).
_UNDECODABLE_FORMATS = {"BUFR", "GRIB", "HDF5", "FITS", "WMF", "EPS", "MPEG"}

Step = tuple[str, str]  # (kind, what was done) - kinds let a folder's notices be counted


@dataclass
class Picture:
    """A decoded image: ``grey`` (H, W) float32 in 0..1 as shown on a white page, and
    ``alpha`` (H, W) float32 in 0..1 (1 = opaque) when the file had transparency."""

    grey: np.ndarray
    alpha: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)


def image_suffixes() -> frozenset[str]:
    """File suffixes (lower case, with the dot) of the formats this Pillow can decode."""
    from PIL import Image

    return frozenset(ext for ext, fmt in Image.registered_extensions().items()
                     if fmt in Image.OPEN and fmt not in _UNDECODABLE_FORMATS)


def decode_image(path: Path) -> Picture:
    """Decode an image file into a :class:`Picture`.

    Applies the EXIF orientation (``PIL.ImageOps.exif_transpose``); reads 1-bit, 8-bit,
    16-bit (``I;16``/``I;16B``/``I;16L``, scaled by 65535, not clipped at 255), 32-bit ``I``
    and float ``F`` greyscale, palette (with or without transparency), RGB, CMYK and the
    alpha modes (LA, PA, RGBA, ...: composited on white). Multi-frame files use frame 1.

    Raises InputError (one line naming the file) for a missing or undecodable file, a
    truncated one, or one larger than ``MAX_PIXELS`` pixels or ``MAX_SIDE`` on a side.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past twice its limit, raises) on huge headers: both become our one line.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_size(path, img.size)
                return _read(img)
    except InputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InputError(f"{path} has more pixels than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} and ours of "
                         f"{MAX_PIXELS:,} (a decompression bomb?); shrink it before classifying") from None
    except FileNotFoundError:
        raise InputError(f"image not found: {path}") from None
    # Plugins for untrusted files raise assorted errors on corrupt data; each is one line here.
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
            struct.error, zlib.error, MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in reason or isinstance(exc, EOFError):
            raise InputError(f"{path} is truncated ({reason}); copy the whole file again") from None
        raise InputError(f"cannot decode {path} as an image ({reason}); use PNG, JPEG or .npy") from None


def _check_size(path: Path, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise InputError(f"{path} is {w}x{h} pixels, over the limit of {MAX_PIXELS:,} pixels and "
                         f"{MAX_SIDE:,} per side (a decompression bomb?); shrink it before classifying")
    if w < 1 or h < 1:
        raise InputError(f"{path} is {w}x{h} pixels: there is nothing to classify")


def _read(img) -> Picture:
    from PIL import Image, ImageOps

    steps: list[Step] = []
    if getattr(img, "n_frames", 1) > 1:
        steps.append(("frames", f"used frame 1 of {img.n_frames}"))
    if img.format == "JPEG" and max(img.size) > 2 * WORK_SIDE:
        img.draft(img.mode, (WORK_SIDE, WORK_SIDE))  # decode at a reduced DCT scale: much faster
    orientation = img.getexif().get(0x0112, 1)
    img.load()
    if orientation in range(2, 9):
        img = ImageOps.exif_transpose(img)
        steps.append(("exif", f"applied EXIF orientation {orientation}"))
    mode = img.mode
    alpha = None
    if mode.startswith("I;16"):
        grey = np.asarray(img).astype(np.float32) / 65535.0
    elif mode in ("I", "F"):
        grey = _scaled_by_range(np.asarray(img), mode)
    elif mode in ("1", "L") and "transparency" not in img.info:
        grey = _shrunk_bytes(img if mode == "L" else img.convert("L"))
    else:
        if "A" in mode or "a" in mode or "transparency" in img.info:
            rgba = img.convert("RGBA")
            alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
            steps.append(("alpha", f"composited {mode} on white"))
        elif mode not in ("RGB",):
            steps.append(("mode", f"converted {mode} to grey"))
        # ITU-R 601-2 luma, Pillow's own RGB -> L; CMYK and the rest go through RGB first.
        grey = _shrunk_bytes(img.convert("RGB").convert("L"))
    if not np.isfinite(grey).all():
        raise ValueError("NaN or infinite pixels")
    if alpha is not None and np.ptp(alpha) == 0:
        alpha = None
    grey, alpha = _shrink(grey, alpha)
    return Picture(grey, alpha, steps)


def _scaled_by_range(arr: np.ndarray, mode: str) -> np.ndarray:
    # 32-bit int and float files carry no bit depth: use the smallest usual range holding the
    # data (0..1, 8 or 16 bits), else the data's own range (contrast is stretched later anyway).
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("NaN or infinite pixels")
    lo = min(float(arr.min()), 0.0)
    top = float(arr.max()) - lo
    ranges = ([1.0] if mode == "F" else []) + [255.0, 65535.0]
    scale = next((r for r in ranges if top <= r), top)
    return ((arr - lo) / max(scale, 1e-12)).astype(np.float32)


def _shrunk_bytes(img) -> np.ndarray:
    """(H, W) float32 in 0..1 of an 8-bit grey image, already shrunk as ``_shrink`` would:
    converted to float a band of rows at a time, so a 60-megapixel scan never needs its
    240 MB float copy (measured: peak memory 588 MB -> 218 MB, the interpreter included, for a 7900 x 7900 PNG)."""
    from PIL import Image

    raw = np.asarray(img)  # uint8, (H, W)
    factor = -(-max(raw.shape) // WORK_SIDE)
    if factor <= 1:
        return raw.astype(np.float32) / 255.0
    rows = factor * 64  # a multiple of factor: no averaging box straddles two bands, so the result is exact
    bands = [np.asarray(Image.fromarray(raw[top:top + rows].astype(np.float32) / 255.0, "F").reduce(factor),
                        dtype=np.float32) for top in range(0, raw.shape[0], rows)]
    return np.concatenate(bands)


def _shrink(grey: np.ndarray, alpha):
    """Both pictures reduced to at most ``WORK_SIDE`` a side; ``grey`` may come already reduced
    (``_shrunk_bytes``), so each is reduced by its own factor."""
    from PIL import Image

    # Image.reduce averages factor x factor blocks: area resampling, so thin strokes fade rather than vanish.
    def reduce(a):
        factor = -(-max(a.shape) // WORK_SIDE)
        return a if factor <= 1 else np.asarray(Image.fromarray(a, "F").reduce(factor), dtype=np.float32)
    return reduce(grey), None if alpha is None else reduce(alpha)
