"""A grey picture of one digit -> a 28x28 digit framed the way MNIST was prepared (numpy + Pillow).

The recipe is MNIST's own (LeCun, Cortes and Burges, "The MNIST database of handwritten
digits", yann.lecun.com/exdb/mnist): each digit was size-normalised to fit a 20x20 box,
keeping its aspect ratio, then placed in a 28x28 field so that its centre of mass lies at
the centre. Measured on the MNIST test set: every digit's ink box has a long side of
exactly 20 px, and its centre of mass lies within half a pixel of (14, 14) in 0-based
pixel indices - an integer translation. A digit framed otherwise (small in a large canvas,
off-centre, dark on light) is out of distribution for every model trained on MNIST.
"""

import numpy as np

from swarmedge.runtimes.image_decode import Step

SIZE = 28  # side of an MNIST image
BOX = 20  # the long side of the digit's ink box in MNIST
CENTRE = 14.0  # where MNIST puts the centre of mass (0-based row and column)
# Below this range of grey levels (about 8 of 255) an image is taken as blank.
MIN_CONTRAST = 0.03
# Levels within this of black background and full ink are left alone (MNIST digits stay
# pixel-exact); beyond it the background is subtracted and the contrast stretched.
LEVELS_SLACK = 0.05
# Ink for the bounding box: above this share of the darkest-to-brightest range, so JPEG
# ringing and scanner noise do not widen the box (MNIST's boxes are the same at 0 and 0.1).
BOX_LEVEL = 0.1
# Stroke-like or not (see shape_problem, measured on MNIST and marker-thick MNIST digits):
SHEET_EDGE = 0.9  # ink on this share of its box's edge: a sheet (MNIST max 0.53, 7 px marker 0.82)
FLAT = 0.3  # a box less tall than this times its width is a dash (MNIST min 0.4)
SOLID_FILL = 0.8  # ink filling this share of its box (MNIST max 0.78 where the box is not a "1")
SOLID_DEPTH = 6  # ... and holding a solid 11x11 square (MNIST at most 9x9): a dot or a block
SHEET_INSET = 0.05  # share of a sheet's sides dropped: its edge blurs into the desk


def ink_on_dark(grey: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray | None, list[Step]]:
    """The digit as light ink on black, stretched to 0..1; ``None`` when the picture is blank.

    ``grey``: (H, W) float in 0..1, as displayed. The background level is the median of the
    picture's border, so polarity does not depend on how much ink there is: if the border is
    nearer the bright end than the dark end, the digit is dark on light and is inverted.
    Unless the background is within ``LEVELS_SLACK`` of black and the ink within it of full
    strength (MNIST's levels, kept exact), the background is subtracted (a grey floor, e.g. a
    scan's, is not ink) and the contrast stretched so the brightest ink is 1 (a faint digit
    is still a digit). If the picture shows nothing but ``alpha`` (1 = opaque) does, the
    opaque strokes are the ink. Blank means grey levels spanning less than ``MIN_CONTRAST``.
    """
    steps: list[Step] = []
    grey = np.asarray(grey, dtype=np.float32)
    if np.ptp(grey) < MIN_CONTRAST and alpha is not None and np.ptp(alpha) >= MIN_CONTRAST:
        grey = np.asarray(alpha, dtype=np.float32)
        steps.append(("alpha", "read the digit from the alpha channel"))
    lo, hi = float(grey.min()), float(grey.max())
    if hi - lo < MIN_CONTRAST:
        return None, steps
    background = float(np.median(_border(grey)))
    inverted = background - lo > hi - background
    if inverted:
        grey = 1.0 - grey
        steps.append(("invert", "inverted a dark digit on a light background"))
    border = _border(grey)
    # The background's own noise (a desk's texture, sensor noise, JPEG) is not ink either: the
    # floor is the border's median plus 4 robust standard deviations (1.4826 MAD).
    floor = float(np.median(border)) + 4 * 1.4826 * float(np.median(np.abs(border - np.median(border))))
    if floor <= LEVELS_SLACK and float(grey.max()) >= 1.0 - LEVELS_SLACK:
        return grey, steps  # black background, full-strength ink: MNIST's levels already
    ink = np.clip(grey - floor, 0.0, None)
    top = float(ink.max())
    if top < MIN_CONTRAST:
        return None, steps
    steps.append(("levels", f"removed a background of {floor:.2f} and stretched the contrast x{1 / top:.2g}"))
    return ink / top, steps


def _border(a: np.ndarray) -> np.ndarray:
    w = max(1, min(a.shape) // SIZE)  # 1 px at 28x28, proportionally more on larger pictures
    return np.concatenate([a[:w].ravel(), a[-w:].ravel(), a[:, :w].ravel(), a[:, -w:].ravel()])


def frame_like_mnist(ink: np.ndarray, _again: bool = True) -> tuple[np.ndarray, list[Step]]:
    """(28, 28) float32 in 0..1: ``ink`` ((H, W) light on black, 0..1, not blank) framed as MNIST was.

    The ink's bounding box is scaled (Pillow, Lanczos: anti-aliased like MNIST) so its long
    side is 20 px, keeping the aspect ratio, and placed in 28x28 by an integer translation
    that brings its centre of mass nearest to (14, 14). A 28x28 input already framed so to
    within a pixel (box long side 19..21, centre of mass within 1 px of (14, 14), as every
    MNIST digit is) is returned unchanged, pixel for pixel, with no step.
    """
    from PIL import Image

    ink = np.asarray(ink, dtype=np.float32)
    rows = np.flatnonzero((ink > BOX_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > BOX_LEVEL).any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if ink.shape == (SIZE, SIZE) and _already_framed(ink, max(r1 - r0, c1 - c0)):
        return ink, []
    crop = ink[r0:r1, c0:c1]
    h, w = crop.shape
    if max(h, w) != BOX:
        scale = BOX / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop), "F").resize(size, Image.Resampling.LANCZOS))
        crop = np.clip(crop, 0.0, None)
        crop = crop / crop.max()  # resampling lowers thin strokes' peaks; MNIST's strokes reach full ink
    h, w = crop.shape
    total = float(crop.sum())
    com_r = float(np.arange(h) @ crop.sum(axis=1)) / total
    com_c = float(np.arange(w) @ crop.sum(axis=0)) / total
    top = int(np.clip(round(CENTRE - com_r), 0, SIZE - h))
    left = int(np.clip(round(CENTRE - com_c), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top:top + h, left:left + w] = crop
    how = f"scaled its {r1 - r0}x{c1 - c0} px to {h}x{w}" if (h, w) != (r1 - r0, c1 - c0) else "cropped it"
    top_, bottom, left_, right = _ink_box(out)
    if _again and not _already_framed(out, max(bottom - top_, right - left_)):
        # Faint halo (JPEG ringing) widened the box and vanished in the resampling: frame the
        # result once more, so that reading a framed digit again leaves it as it is.
        out = frame_like_mnist(out, _again=False)[0]
    return out, [("frame", f"framed the digit like MNIST: {how}, centred by mass in 28x28")]


def _already_framed(ink: np.ndarray, long_side: int) -> bool:
    # Within a pixel of MNIST's framing: re-framing would only move it by a pixel or resample
    # JPEG noise at the box's edge, and measured no better (docs/IMAGES.md), so keep it exact.
    total = float(ink.sum())
    com_r = float(np.arange(SIZE) @ ink.sum(axis=1)) / total
    com_c = float(np.arange(SIZE) @ ink.sum(axis=0)) / total
    return abs(long_side - BOX) <= 1 and abs(com_r - CENTRE) <= 1 and abs(com_c - CENTRE) <= 1


class NotADigit(ValueError):
    """The ink is a filled shape (a dot, a bar, a block, a sheet of paper), not strokes: no
    digit to classify. The message says so in words for the user; callers prefix the name."""


def mnist_digit(grey: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray | None, list[Step]]:
    """(28, 28) float32 0..1 light-on-dark MNIST-framed digit from a displayed grey picture
    ((H, W) float 0..1), and the steps taken; ``None`` for a blank picture. See
    :func:`ink_on_dark` and :func:`frame_like_mnist`.

    When the ink is not stroke-like (:func:`shape_problem`) and covers the edges of its box
    (a light sheet of paper photographed on a darker desk: the border is the desk, so the
    sheet reads as ink), the sheet is cropped (minus ``SHEET_INSET`` of its sides, where
    its edge blurs into the desk) and read again on its own: the digit on it becomes the
    ink. Raises :class:`NotADigit` when what is left is still a filled shape or blank.
    """
    ink, steps = ink_on_dark(grey, alpha)
    if ink is None:
        return None, steps
    digit, framed = frame_like_mnist(ink)
    problem = shape_problem(digit)
    if problem is None:
        return digit, steps + framed
    if problem != "sheet":
        raise NotADigit(_NOT_A_DIGIT.format(problem))
    r0, r1, c0, c1 = _ink_box(ink, 0.5)  # the sheet is full ink: its box should not follow the desk's noise
    dr, dc = int(np.ceil(SHEET_INSET * (r1 - r0))), int(np.ceil(SHEET_INSET * (c1 - c0)))
    sheet = np.asarray(grey if alpha is None or np.ptp(grey) >= MIN_CONTRAST else alpha,
                       dtype=np.float32)[r0 + dr:r1 - dr, c0 + dc:c1 - dc]
    if min(sheet.shape) < 3:
        raise NotADigit(_NOT_A_DIGIT.format("a dot or a block"))
    ink, sheet_steps = ink_on_dark(sheet)
    if ink is None:
        raise NotADigit(_NOT_A_DIGIT.format("a block or a sheet with nothing on it"))
    digit, framed = frame_like_mnist(ink)
    problem = shape_problem(digit)
    if problem is not None:
        raise NotADigit(_NOT_A_DIGIT.format("a sheet or a block" if problem == "sheet" else problem))
    found = [("sheet", f"read the digit on a light sheet ({r1 - r0}x{c1 - c0} px) found on a darker background")]
    border = _border(ink)
    if float(border.max()) > 0.5:  # ink at the crop's edge: the desk, the sheet's edge or a cut-off digit
        found.append(("edge", "ink touches the edge of the sheet: if the answer looks wrong, crop the picture "
                              "to the digit"))
    kept = [s for s in steps if s[0] == "alpha"]  # the first levels were the desk's, not the sheet's
    return digit, kept + found + sheet_steps + framed


_NOT_A_DIGIT = "looks like a filled shape ({}), not a handwritten digit: crop the picture to the digit"


def _ink_box(ink: np.ndarray, level: float = BOX_LEVEL) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((ink > level).any(axis=1))
    cols = np.flatnonzero((ink > level).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def shape_problem(digit: np.ndarray) -> str | None:
    """``None`` when a framed digit ((28, 28), light on black) is made of strokes, else what it
    looks like: ``"sheet"`` (ink covering the edges of its box all round), ``"a dash"`` (a
    flat bar) or ``"a dot or a block"`` (a solid blob). Thresholds from measurement
    (docs/IMAGES.md): ink = pixels above 0.5 (the boids), box = pixels above ``BOX_LEVEL``.

    On the 70,000 MNIST digits, and the same digits drawn with markers 2 to 7 px thick
    (28 px scale), ink covers at most 53% (MNIST) and 82% (7 px marker) of its box's edge,
    the box is at least 0.4 as tall as wide, and no digit both fills ``SOLID_FILL`` of a
    box at least half as wide as tall and holds a solid square ``2 * SOLID_DEPTH - 1`` px
    across. Boxes under half as wide as tall are lines, read as "1"s.
    """
    mask = digit > 0.5
    r0, r1, c0, c1 = _ink_box(digit)
    box = mask[r0:r1, c0:c1]
    h, w = box.shape
    if h < FLAT * w:
        return "a dash or a line"
    if w < 0.5 * h:
        return None  # a vertical stroke: a "1", however solid
    edge = np.concatenate([box[0], box[-1], box[1:-1, 0], box[1:-1, -1]])
    if float(edge.mean()) >= SHEET_EDGE:
        return "sheet"
    if float(box.mean()) >= SOLID_FILL and _depth(mask) >= SOLID_DEPTH:
        return "a dot or a block"
    return None


def _depth(mask: np.ndarray) -> int:
    # How many 3x3 erosions the mask survives: a solid square 2d-1 px across survives d-1.
    d = 0
    while mask.any() and d < SIZE:
        p = np.pad(mask, 1)
        mask = (p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
                & p[:-2, :-2] & p[:-2, 2:] & p[2:, :-2] & p[2:, 2:])
        d += 1
    return d
