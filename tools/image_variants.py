"""Measure how image files as users have them classify: MNIST 5-vs-6 test digits rendered each way.

Every MNIST 5 and 6 test digit is written as a file in each variant below (EXIF-rotated JPEG,
16-bit PNG with a grey floor, alpha-only PNG, a digit in a corner of a big canvas, ...), read
back through swarmedge's one image reader (``swarmedge.runtimes.images.load_images``, as
``run --image`` and ``eval --data folder`` read them) and classified by a bundle's int8 model.

    python tools/image_variants.py                      # exports zoo/boids-5v6/model.pt first
    python tools/image_variants.py --bundle boids.bundle --limit 400 --write-docs

``--write-docs`` replaces the table in docs/IMAGES.md. Needs $SWARMEDGE_DATA (MNIST).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "IMAGES.md"
START, END = "<!-- variants:start -->", "<!-- variants:end -->"


def _exif(orientation: int):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _save(array: np.ndarray, path: Path, mode: str | None = None, **kw) -> Path:
    from PIL import Image

    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path, **kw)
    return path


# Each variant writes digit ``a`` ((28, 28) uint8, light on dark, MNIST-framed) to a file
# named ``stem`` + its suffix and returns the path; ``rng`` makes any randomness seeded.
def plain(a, stem, rng):
    return _save(a, stem.with_suffix(".png"))


def exif_jpeg(orientation: int):
    # Stored so that a viewer applying the tag shows the digit upright, as a phone photo.
    stored = {6: 1, 8: -1, 3: 2}[orientation]

    def render(a, stem, rng):
        return _save(np.rot90(a, stored).copy(), stem.with_suffix(".jpg"), exif=_exif(orientation))
    return render


def png16_floor(a, stem, rng):
    # A 16-bit scan: a grey floor at 10% with a little sensor noise, ink reaching full scale.
    v = 0.10 + 0.90 * a / 255.0 + rng.normal(0, 0.004, a.shape)
    return _save(np.clip(np.round(v * 65535), 0, 65535).astype(np.uint16), stem.with_suffix(".png"))


def alpha_only(a, stem, rng):
    # Black strokes whose opacity is the digit, on a transparent background (drawing apps, icons).
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = a
    return _save(rgba, stem.with_suffix(".png"), "RGBA")


def quarter_canvas(a, stem, rng):
    # The 28x28 digit, unchanged, somewhere in a 112x112 black canvas (a quarter of its width).
    big = np.zeros((112, 112), np.uint8)
    r, c = rng.integers(0, 112 - 28, size=2)
    big[r:r + 28, c:c + 28] = a
    return _save(big, stem.with_suffix(".png"))


def enlarged(a, stem, rng):
    # The digit drawn 3x larger and off-centre in a 112x112 canvas: framing must shrink it.
    from PIL import Image

    up = np.asarray(Image.fromarray(a).resize((84, 84), Image.Resampling.BICUBIC))
    big = np.zeros((112, 112), np.uint8)
    r, c = rng.integers(0, 112 - 84, size=2)
    big[r:r + 84, c:c + 84] = up
    return _save(big, stem.with_suffix(".png"))


def dark_on_light(a, stem, rng):
    return _save(255 - a, stem.with_suffix(".png"))


def ink_scan(a, stem, rng):
    # Blue ink on cream paper, RGB JPEG: colour to grey, inversion and a background floor at once.
    d = a[..., None] / 255.0
    rgb = (1 - d) * np.array([245, 238, 220]) + d * np.array([25, 35, 120])
    return _save(np.round(rgb).astype(np.uint8), stem.with_suffix(".jpg"), quality=90)


def sheet_on_desk(a, stem, rng):
    # A photo of white paper on a darker desk: the picture's border is the desk, not the page.
    from PIL import Image

    d = np.asarray(Image.fromarray(a).resize((56, 56), Image.Resampling.BICUBIC)) / 255.0
    desk = 0.25 + rng.normal(0, 0.02, (112, 112))
    h, w = rng.integers(72, 96, size=2)
    top, left = rng.integers(2, 112 - h - 2), rng.integers(2, 112 - w - 2)
    desk[top:top + h, left:left + w] = 0.88 + rng.normal(0, 0.01, (h, w))  # the sheet
    r, c = top + rng.integers(6, h - 56 - 6 + 1), left + rng.integers(6, w - 56 - 6 + 1)
    desk[r:r + 56, c:c + 56] -= 0.7 * d  # dark ink on the sheet
    return _save(np.round(np.clip(desk, 0, 1) * 255).astype(np.uint8), stem.with_suffix(".jpg"), quality=90)


VARIANTS = {
    "plain 28x28 PNG": plain,
    "JPEG, EXIF orientation 6": exif_jpeg(6),
    "JPEG, EXIF orientation 8": exif_jpeg(8),
    "JPEG, EXIF orientation 3": exif_jpeg(3),
    "16-bit PNG, 10% grey floor + noise": png16_floor,
    "alpha-only PNG (RGBA)": alpha_only,
    "28x28 digit in a 112x112 canvas": quarter_canvas,
    "3x digit off-centre in 112x112": enlarged,
    "dark on light PNG": dark_on_light,
    "blue ink on cream paper, RGB JPEG": ink_scan,
    "digit on a light sheet on a dark desk, JPEG": sheet_on_desk,
}
BASELINE = "plain 28x28 PNG"


def mnist_5v6(data: Path | None = None, limit: int | None = None, seed: int = 0):
    """(N, 28, 28) uint8 MNIST test digits 5 and 6 and their labels (0 = '5'), a seeded subset when ``limit``."""
    from swarmedge.datasets.mnist import load_mnist

    x, y = load_mnist("test", data, download=False)
    keep = np.flatnonzero(np.isin(y, (5, 6)))
    if limit and limit < len(keep):
        keep = np.sort(np.random.default_rng(seed).choice(keep, limit, replace=False))
    return x[keep], (y[keep] == 6).astype(np.int64)


def measure(bundle: Path, digits: np.ndarray, labels: np.ndarray, variants=None, precision: str = "int8",
            seed: int = 0) -> dict[str, dict]:
    """{variant: {"accuracy", "n", "notes", "seconds"}}: each digit written as that variant's file,
    read by ``load_images`` and classified by ``bundle`` at ``precision``."""
    from swarmedge.runtimes import Classifier
    from swarmedge.runtimes.images import load_images

    clf = Classifier(bundle, precision=precision)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v, (name, render) in enumerate((variants or VARIANTS).items()):
            rng = np.random.default_rng(seed + v)
            folder = Path(tmp) / str(v)
            folder.mkdir()
            paths = [render(a, folder / f"{i:05d}", rng) for i, a in enumerate(digits)]
            t0 = time.perf_counter()
            notes: list[str] = []
            images = load_images(paths, notes, source=name)
            preds = np.array([p.index for p in clf.classify_images(images)])
            out[name] = {"accuracy": float((preds == labels).mean()), "n": len(labels), "notes": notes,
                         "seconds": time.perf_counter() - t0}
    return out


def table(results: dict[str, dict], precision: str) -> str:
    base = results[BASELINE]["accuracy"]
    rows = [f"| variant | accuracy ({precision}) | vs plain |", "| --- | ---: | ---: |"]
    for name, r in results.items():
        delta = "" if name == BASELINE else f"{(r['accuracy'] - base) * 100:+.2f} pt"
        rows.append(f"| {name} | {r['accuracy']:.2%} | {delta} |")
    return "\n".join(rows)


def write_docs(results: dict[str, dict], precision: str, command: str, n: int) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{DOC} has no {START} ... {END} markers")
    body = (f"{START}\nMeasured with `{command}` on the {n:,} MNIST 5 and 6 test digits, the zoo's "
            f"`boids-5v6` exported with defaults, {precision}:\n\n{table(results, precision)}\n{END}")
    head, rest = text.split(START, 1)
    DOC.write_text(head + body + rest.split(END, 1)[1], encoding="utf-8")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="a boids 5-vs-6 bundle [default: export zoo/boids-5v6/model.pt]")
    ap.add_argument("--limit", type=int, help="a seeded subset of this many digits [default: all 1,850]")
    ap.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    ap.add_argument("--write-docs", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    data = Path(os.environ["SWARMEDGE_DATA"]) if "SWARMEDGE_DATA" in os.environ else None
    digits, labels = mnist_5v6(data, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            from swarmedge.export import export_bundle

            bundle = export_bundle(ROOT / "zoo" / "boids-5v6" / "model.pt", Path(tmp) / "boids.bundle")[0]
        results = measure(bundle, digits, labels, precision=args.precision)
    print(table(results, args.precision))  # noqa: T201 - a script's report
    for name, r in results.items():
        print(f"{name}: {r['seconds']:.1f} s; {' | '.join(r['notes']) or 'no notes'}")  # noqa: T201
    if args.write_docs:
        flags = (f" --limit {args.limit}" if args.limit else "") + (
            f" --precision {args.precision}" if args.precision != "int8" else "")
        write_docs(results, args.precision, f"python tools/image_variants.py{flags} --write-docs", len(labels))


if __name__ == "__main__":
    main()
