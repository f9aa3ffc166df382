"""Pictures as users have them: EXIF orientation, every image mode, polarity and MNIST framing,
filled shapes and sheets of paper - and the measured accuracy of each variant.

The cases of ../shared/cases (exif-rotated-jpeg, digit-with-margins, flattened-784-npy) run
through the CLI; their siblings are generated here from MNIST test digits. Arrays, folders and
broken files: test_image_files.py.
"""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from swarmedge.errors import InputError
from swarmedge.runtimes.framing import frame_like_mnist
from swarmedge.runtimes.images import digits_from_array, load_image, load_images

from .conftest import ROOT, run_device
from .imagecases import LEVEL, assert_one_line_error, cli_result, run_labels


# -- the cases -------------------------------------------------------------------------------
def test_case_exif_rotated_jpeg(zoo_boids_bundle, cases_dir):
    case = cases_dir / "exif-rotated-jpeg"
    r = cli_result("run", zoo_boids_bundle, "--image", case / "five_exif6.jpg", "--image", case / "six_exif6.jpg")
    assert r.exit_code == 0, r.output
    assert run_labels(r) == ["5", "6"]
    assert "EXIF orientation 6" in r.stderr


def test_case_digit_with_margins(zoo_boids_bundle, cases_dir):
    case = cases_dir / "digit-with-margins"
    r = cli_result("run", zoo_boids_bundle, "--image", case / "five_margin.png", "--image", case / "six_margin.png")
    assert r.exit_code == 0, r.output
    assert run_labels(r) == ["5", "6"]
    assert r.stderr.count("framed the digit like MNIST") == 2


@pytest.mark.parametrize("name", ["digits_flat.npy", "digits_nchw.npy"])
def test_case_flattened_784_npy(zoo_boids_bundle, cases_dir, name):
    r = cli_result("run", zoo_boids_bundle, "--file", cases_dir / "flattened-784-npy" / name)
    assert r.exit_code == 0, r.output
    assert run_labels(r) == ["5", "6", "5", "6"]


def test_cases_on_the_device_side_without_torch(zoo_boids_bundle, cases_dir):
    r = run_device(["run", str(zoo_boids_bundle), "--image", str(cases_dir / "exif-rotated-jpeg" / "five_exif6.jpg"),
                    "--image", str(cases_dir / "digit-with-margins" / "six_margin.png")])
    assert r.returncode == 0, r.stderr
    assert run_labels(r) == ["5", "6"]


# -- image modes ---------------------------------------------------------------------------------
def _modes(a: np.ndarray) -> dict:
    """{name: (suffix, PIL image)}: digit ``a`` (uint8, light on dark) in every common mode,
    each showing the same digit when displayed on white."""
    light = Image.fromarray(a)
    dark = Image.fromarray(255 - a)
    pal = dark.convert("P")  # 256 greys fit a palette exactly
    pal_t = pal.copy()
    pal_t.info["transparency"] = int(np.asarray(pal)[0, 0])  # the white page is transparent
    black_alpha = np.zeros((*a.shape, 4), np.uint8)
    black_alpha[..., 3] = a
    white_alpha = black_alpha.copy()
    white_alpha[..., :3] = 255  # invisible on white: only the alpha channel shows the digit
    return {
        "L": (".png", light),
        "I;16": (".png", Image.fromarray(a.astype(np.uint16) * 257)),
        "I;16 dark": (".png", Image.fromarray((255 - a).astype(np.uint16) * 257)),
        "I;16B": (".tif", Image.frombytes("I;16B", light.size, (a.astype(">u2") * 257).tobytes())),
        "I": (".tif", Image.fromarray(a.astype(np.int32) * 1000)),
        "F": (".tif", Image.fromarray(a.astype(np.float32) / 255)),
        "P": (".png", pal),
        "P transparent": (".png", pal_t),
        "RGB": (".png", dark.convert("RGB")),
        "CMYK": (".tif", dark.convert("RGB").convert("CMYK")),
        "LA": (".png", Image.merge("LA", [Image.new("L", light.size, 0), light])),
        "RGBA black, alpha only": (".png", Image.fromarray(black_alpha, "RGBA")),
        "RGBA white, alpha only": (".png", Image.fromarray(white_alpha, "RGBA")),
        "BMP": (".bmp", light),
        "GIF": (".gif", light),
    }


@pytest.mark.parametrize("mode", list(_modes(np.zeros((2, 2), np.uint8))))
def test_every_mode_reads_as_the_8_bit_digit(digit, tmp_path, mode):
    suffix, img = _modes(digit)[mode]
    path = tmp_path / f"d{suffix}"
    img.save(path)
    got = load_image(path)
    np.testing.assert_allclose(got, digit / 255.0, atol=LEVEL, err_msg=mode)


def test_one_bit_image(digit, tmp_path):
    binary = np.where(digit > 127, 255, 0).astype(np.uint8)
    Image.fromarray(binary).convert("1").save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode == "1"
    np.testing.assert_array_equal(load_image(tmp_path / "d.png"), binary / 255.0)


def test_16_bit_floor_and_faint_digits_are_stretched(digit, tmp_path):
    floor = 0.12 + 0.88 * digit / 255.0  # a 16-bit scan with a grey floor
    Image.fromarray(np.round(floor * 65535).astype(np.uint16)).save(tmp_path / "floor.png")
    faint = np.round(digit * 0.25).astype(np.uint8)  # nothing above 0.5: once refused
    Image.fromarray(faint).save(tmp_path / "faint.png")
    notices = []
    np.testing.assert_allclose(load_image(tmp_path / "floor.png", notices), digit / 255.0, atol=1e-3)
    got = load_image(tmp_path / "faint.png", notices)
    assert (got > 0.5).sum() >= 0.8 * (digit > 127).sum()
    assert all("background" in n for n in notices), notices


def _inverse(orientation: int):
    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE,
            6: t.ROTATE_90, 7: t.TRANSVERSE, 8: t.ROTATE_270}[orientation]


@pytest.mark.parametrize("orientation", range(2, 9))
def test_every_exif_orientation(digit, tmp_path, orientation):
    upright = np.zeros((28, 44), np.uint8)  # not square: a swapped width and height would show
    upright[:, 3:31] = digit
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(upright).transpose(_inverse(orientation)).save(tmp_path / "d.png", exif=exif)
    Image.fromarray(upright).save(tmp_path / "upright.png")
    notices = []
    np.testing.assert_array_equal(load_image(tmp_path / "d.png", notices), load_image(tmp_path / "upright.png"))
    assert f"EXIF orientation {orientation}" in notices[0]


# -- polarity and framing -------------------------------------------------------------------------
def test_polarity_comes_from_the_border_not_the_mean(tmp_path):
    r, c = np.mgrid[:28, :28] - 13.5
    outer, inner = (r / 13.5) ** 2 + (c / 12.5) ** 2 <= 1, (r / 5) ** 2 + (c / 3.5) ** 2 <= 1
    bold = np.where(outer & ~inner, 255, 0).astype(np.uint8)  # a bold "0": its mean is above 0.5
    assert bold.mean() > 127
    Image.fromarray(bold).save(tmp_path / "bold.png")
    Image.fromarray(255 - bold).save(tmp_path / "bold_dark.png")
    notices = []
    light = load_image(tmp_path / "bold.png", notices)
    assert not any("inverted" in n for n in notices)
    np.testing.assert_array_equal(load_image(tmp_path / "bold_dark.png"), light)


def test_mnist_digits_are_left_exactly_as_they_are(data_dir):
    with np.load(data_dir / "mnist.npz") as z:
        x = z["x_test"][:2000] / 255.0
    notices = []
    np.testing.assert_array_equal(digits_from_array(x, "mnist", notices), x.astype(np.float32))
    assert notices == []


def test_a_digit_anywhere_in_a_big_canvas_is_framed_like_mnist(mnist56, tmp_path):
    x = mnist56[0]
    rng = np.random.default_rng(0)
    paths = []
    for i, a in enumerate(x):
        big = np.zeros((112, 150), np.uint8)
        r, c = rng.integers(0, 112 - 28), rng.integers(0, 150 - 28)
        big[r:r + 28, c:c + 28] = a
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(big).save(paths[-1])
    framed = load_images(paths)
    # same pixels as the MNIST digit, up to faint anti-aliasing outside the ink box
    exact = [np.abs(f - a / 255.0).max() <= 0.1 for f, a in zip(framed, x)]
    assert np.mean(exact) >= 0.95


def test_a_large_digit_is_scaled_to_a_20_px_box(digit):
    big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC)) / 255.0
    framed, steps = frame_like_mnist(big)
    rows = np.flatnonzero((framed > 0.1).any(1))
    cols = np.flatnonzero((framed > 0.1).any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
    com = [float(np.arange(28) @ framed.sum(axis=k)) / framed.sum() for k in (1, 0)]
    assert np.allclose(com, 14, atol=0.5) and steps and "scaled" in steps[0][1]
    # the same digit to within resampling: as much ink above the boid threshold, in the same place
    assert 0.7 < (framed > 0.5).sum() / (digit > 127).sum() < 1.3
    assert np.abs(framed - digit / 255.0).mean() < 0.1


# -- filled shapes and sheets of paper ------------------------------------------------------------
def _shapes(n: int = 112) -> dict:
    r, c = np.mgrid[:n, :n] * (112 / n)
    return {
        "dot": (r - 56) ** 2 + (c - 56) ** 2 < 15 ** 2,
        "small dot": (r - 56) ** 2 + (c - 56) ** 2 < 3 ** 2,
        "horizontal line": (abs(r - 56) < 3) & (abs(c - 56) < 40),
        "filled rectangle": (abs(r - 56) < 20) & (abs(c - 56) < 30),
        "blank sheet on a desk": (abs(r - 56) < 50) & (abs(c - 56) < 40),
    }


@pytest.mark.parametrize("shape", list(_shapes()))
@pytest.mark.parametrize("light", [True, False], ids=["light shape", "dark shape"])
def test_filled_shapes_are_refused_not_classified(zoo_boids_bundle, tmp_path, shape, light):
    img = np.where(_shapes()[shape], 225, 50).astype(np.uint8)
    Image.fromarray(img if light else 255 - img).save(tmp_path / "shape.png")
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", tmp_path / "shape.png"), "filled shape")


@pytest.mark.parametrize("shape", ["dot", "horizontal line", "filled rectangle"])
def test_filled_shapes_in_arrays_are_refused_naming_the_image(mnist56, shape):
    arr = np.concatenate([mnist56[0][:2], np.where(_shapes(28)[shape], 255, 0).astype(np.uint8)[None]])
    with pytest.raises(InputError, match=r"x\.npy\[2\] looks like a filled shape"):
        digits_from_array(arr, "x.npy")
    assert not digits_from_array(arr, "x.npy", blank="zeros")[2].any()  # calibration skips it, as a blank


@pytest.mark.parametrize("size", [9, 13])
def test_thick_marker_digits_are_still_digits(zoo_boids_bundle, mnist56, size):
    """Digits drawn 2 and 3 px thicker (at 28 px) than MNIST's: strokes, not filled shapes."""
    from PIL import ImageFilter

    from swarmedge.runtimes import Classifier

    x, y = mnist56
    thick = np.stack([np.asarray(Image.fromarray(a).resize((112, 112), Image.Resampling.BICUBIC)
                                 .filter(ImageFilter.MaxFilter(size)).resize((28, 28), Image.Resampling.BOX))
                      for a in x])
    preds = [p.index for p in Classifier(zoo_boids_bundle).classify_images(thick)]
    assert np.mean(np.array(preds) == y) >= 0.75  # accepted; the model itself is weaker on bold strokes


def test_digit_on_a_light_sheet_on_a_dark_desk(zoo_boids_bundle, mnist56, tmp_path):
    """The desk is the picture's border, so the sheet reads as ink at first: it must be found
    and the digit on it read (once, every answer was "5" at 1.000)."""
    tool = _variants_tool()
    x, y = mnist56
    rng = np.random.default_rng(3)
    paths = [tool.sheet_on_desk(a, tmp_path / f"{i:02d}", rng) for i, a in enumerate(x)]
    r = cli_result("run", zoo_boids_bundle, *[arg for p in paths for arg in ("--image", p)])
    assert r.exit_code == 0, r.output
    assert np.mean(np.array(run_labels(r)) == np.array(["56"[i] for i in y])) >= 0.95
    assert r.stderr.count("read the digit on a light sheet") == len(paths)


def test_ink_at_the_edge_of_a_sheet_gets_a_notice(digit, tmp_path):
    page = np.full((100, 80), 0.9)
    page[30:86, 10:66] -= 0.8 * np.asarray(Image.fromarray(digit).resize((56, 56))) / 255.0
    page[:20, 40:43] = 0.2  # a pencil line running off the sheet's top edge
    desk = np.full((120, 100), 0.2)
    desk[10:110, 10:90] = page
    Image.fromarray(np.round(desk * 255).astype(np.uint8)).save(tmp_path / "edge.png")
    notices = []
    load_image(tmp_path / "edge.png", notices)
    assert "touches the edge of the sheet" in notices[0], notices


# -- measured acceptance ------------------------------------------------------------------------------
def _variants_tool():
    spec = importlib.util.spec_from_file_location("image_variants", ROOT / "tools" / "image_variants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image_variants_stay_within_a_point_of_plain_digits(zoo_boids_bundle, data_dir):
    """The issue's acceptance on a seeded 600 of the 1,850 test digits (the full table: docs/IMAGES.md)."""
    tool = _variants_tool()
    digits, labels = tool.mnist_5v6(data_dir / "mnist.npz", limit=600, seed=1)
    names = [tool.BASELINE, "JPEG, EXIF orientation 6", "JPEG, EXIF orientation 8",
             "16-bit PNG, 10% grey floor + noise", "alpha-only PNG (RGBA)", "28x28 digit in a 112x112 canvas",
             "3x digit off-centre in 112x112", "dark on light PNG", "digit on a light sheet on a dark desk, JPEG"]
    results = tool.measure(zoo_boids_bundle, digits, labels, {n: tool.VARIANTS[n] for n in names})
    base = results[tool.BASELINE]["accuracy"]
    assert base > 0.94
    for name, r in results.items():
        assert abs(r["accuracy"] - base) <= 0.01, (name, r["accuracy"], base)
