"""Numpy arrays of digits (.npy/.npz files, or in memory) -> (N, 28, 28) grey in 0..1.

One reading of layouts and value scales for every array path: ``run --file``, ``run --image
x.npy``, ``--calibration`` and the Python API.
"""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.limits import MAX_DIGITS, available_memory

SIZE = 28
LAYOUTS = ("(N, 784), (N, 28, 28), (N, 1, 28, 28), (N, 28, 28, 1), or one image as (28, 28), (784,) "
           "or (28, 28, 1); uint8 0..255 or float 0..1")
NPZ_KEYS = ("x_test", "x_train", "images", "x")  # keras.datasets.mnist's names first


def load_array(path: Path) -> np.ndarray:
    """The array in a .npy file, or in a .npz under one of ``NPZ_KEYS`` (or its only array).

    The header is read first: an array of another shape (see ``LAYOUTS``) or of more than
    ``MAX_DIGITS`` digits is refused before its data is read, so a (1, 100000, 100000)
    file costs nothing. Raises InputError for a missing or unreadable file, a pickled object
    array, such a shape, or an .npz without a recognisable images array.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    if path.suffix.lower() not in (".npy", ".npz"):  # np.load would try to unpickle anything else
        raise InputError(f"{path} is not a .npy or .npz file: arrays of digits are read from .npy/.npz (np.save)")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                key = next((k for k in NPZ_KEYS if k in z.files), z.files[0] if len(z.files) == 1 else None)
                if key is None:
                    raise InputError(f"{path} holds {', '.join(z.files) or 'no arrays'}; "
                                     f"name the images array one of {', '.join(NPZ_KEYS)}")
                member_name = f"{key}.npy" if f"{key}.npy" in z.zip.namelist() else key
                with z.zip.open(member_name) as member:
                    _check_header(member, f"{path}[{key}]")
                return z[key]
        with open(path, "rb") as f:
            _check_header(f, str(path))
        return np.load(path, allow_pickle=False)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {path} as a numpy array ({reason}); save it with np.save") from None


def _check_header(f, name: str) -> None:
    """Refuse, from the .npy header alone, an array whose shape is not a digit layout or that
    holds too many digits; a header numpy cannot parse is left for np.load to report."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(f)
    except (ValueError, OSError, EOFError):
        return
    check_digit_count(shape, name)


def stack_size(shape: tuple[int, ...]) -> int | None:
    """How many digits an array of ``shape`` holds in one of ``LAYOUTS``, or None for another shape."""
    shape = tuple(shape)
    if shape in ((SIZE, SIZE), (SIZE * SIZE,), (SIZE, SIZE, 1)):
        return 1
    if len(shape) == 2 and shape[1] == SIZE * SIZE:
        return shape[0]
    if (len(shape) == 3 and shape[1:] == (SIZE, SIZE)) or (len(shape) == 4 and shape[1:] in
                                                           ((1, SIZE, SIZE), (SIZE, SIZE, 1))):
        return shape[0]
    return None


def check_digit_count(shape: tuple[int, ...], name: str) -> int:
    """The number of digits in an array of ``shape``; raises InputError (one line) for a shape
    not in ``LAYOUTS`` or more digits than ``MAX_DIGITS`` or than memory holds as float32."""
    n = stack_size(shape)
    if n is None:
        raise InputError(f"{name} has shape {tuple(shape)}; expected {LAYOUTS}")
    if n > MAX_DIGITS:
        raise InputError(f"{name} holds {n:,} digits; at most {MAX_DIGITS:,} are read at once: "
                         f"split it into files of up to {MAX_DIGITS:,}")
    need = n * SIZE * SIZE * 4 * 3  # the float32 copy, plus framing's working copies
    available = available_memory()
    if available is not None and need > available:
        raise InputError(f"{name} holds {n:,} digits, about {need / 2**30:.1f} GiB to read, more than the "
                         f"{available / 2**30:.1f} GiB of memory available: split it into smaller files")
    return n


def as_digit_stack(arr, name: str) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(N, 28, 28) float32 in 0..1 from any accepted layout (see ``LAYOUTS``), and steps taken.

    uint8 (and other integer) pixels are divided by 255, except 0/1 integers (a binarised digit);
    float and bool pixels in 0..1 are kept, and
    floats up to 255 (sklearn's and Kaggle's MNIST) are divided by 255 with a note. The scale
    is decided for the whole array, never per image. Raises InputError (one line naming
    ``name`` and the accepted layouts) for any other shape, more than ``MAX_DIGITS`` digits,
    a non-numeric dtype, NaN or infinite values, negative values or values above 255.
    """
    arr = np.asarray(arr)
    n = check_digit_count(arr.shape, name)
    arr = arr.reshape(n, SIZE, SIZE)
    divisor, steps = value_scale(arr, name)
    return scaled(arr, divisor), steps


def value_scale(stack, name: str, step: int = 4096) -> tuple[float, list[tuple[str, str]]]:
    """What the pixels of an (N, 28, 28) ``stack`` are divided by to lie in 0..1 (1 or 255), and
    the steps to tell: the rules of :func:`as_digit_stack`, for the whole stack. It is read
    ``step`` digits at a time, so a memory-mapped array is never in memory whole. Raises
    InputError as :func:`as_digit_stack` does."""
    if len(stack) == 0:
        raise InputError(f"{name} holds no images (shape {stack.shape})")
    dtype = stack.dtype
    if not (dtype.kind == "b" or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(f"{name} has dtype {dtype}; expected {LAYOUTS}")
    lo, hi = np.inf, -np.inf
    for start in range(0, len(stack), step):
        part = np.asarray(stack[start:start + step])
        if np.issubdtype(dtype, np.floating) and not np.isfinite(part).all():
            raise InputError(f"{name} contains NaN or infinite pixels; expected {LAYOUTS}")
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if lo < 0 or hi > 255:
        raise InputError(f"{name} has pixels in {lo:g}..{hi:g}; expected uint8 0..255 or float 0..1")
    if dtype.kind == "b":
        return 1.0, []
    if np.issubdtype(dtype, np.integer) and hi <= 1:
        return 1.0, [("scale", "read integers 0/1 as black/white")]
    if np.issubdtype(dtype, np.integer):
        return 255.0, []
    if hi > 1.0:
        return 255.0, [("scale", "read floats above 1 as 0..255")]
    return 1.0, []


def scaled(stack, divisor: float) -> np.ndarray:
    """``stack`` as float32 divided by ``divisor`` (from :func:`value_scale`)."""
    out = np.asarray(stack).astype(np.float32)
    if divisor != 1.0:
        out /= divisor
    return out


def open_stack(path: Path) -> np.ndarray:
    """The digits of a .npy or .npz file as an (N, 28, 28) array, without reading them all: a
    .npy is memory mapped (C-ordered ones; others, and .npz members, are read whole as by
    :func:`load_array`, with its limits). Raises InputError as :func:`load_array` does, and for
    a shape not in ``LAYOUTS``."""
    path = Path(path)
    if path.suffix.lower() == ".npy" and path.is_file():
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):
            arr = None  # load_array reports it
        n = None if arr is None else stack_size(arr.shape)
        if arr is not None and n is None:
            raise InputError(f"{path} has shape {arr.shape}; expected {LAYOUTS}")
        if arr is not None and arr.flags.c_contiguous:
            return arr.reshape(n, SIZE, SIZE)
    arr = load_array(path)
    return np.asarray(arr).reshape(check_digit_count(arr.shape, str(path)), SIZE, SIZE)
