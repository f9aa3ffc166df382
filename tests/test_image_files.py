"""Image inputs in bulk and gone wrong: array layouts, folders with hidden files and junk, the
Python API, run --file, bombs and truncated files, calibration on image folders."""

import json
import logging
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from swarmedge.errors import InputError
from swarmedge.runtimes.image_arrays import LAYOUTS
from swarmedge.runtimes.images import digits_from_array, image_files, load_image, load_images, read_image_array

from .imagecases import assert_one_line_error, cli_result, run_labels

# -- arrays -----------------------------------------------------------------------------------------
LAYOUT_CASES = {
    "(N, 784)": lambda x: x.reshape(len(x), 784),
    "(N, 28, 28)": lambda x: x,
    "(N, 1, 28, 28)": lambda x: x[:, None],
    "(N, 28, 28, 1)": lambda x: x[..., None],
    "(N, 784) float 0..1": lambda x: x.reshape(len(x), 784) / np.float32(255),
    "(N, 28, 28) float64 0..255": lambda x: x.astype(np.float64),
}


@pytest.mark.parametrize("layout", list(LAYOUT_CASES))
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_every_array_layout(mnist56, tmp_path, layout, suffix):
    x = mnist56[0][:4]
    arr = LAYOUT_CASES[layout](x)
    path = tmp_path / f"a{suffix}"
    np.save(path, arr) if suffix == ".npy" else np.savez(path, x_test=arr)
    np.testing.assert_allclose(read_image_array(path), x / 255.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(28, 28), (784,), (28, 28, 1), (1, 28, 28)])
def test_single_image_arrays_work_with_image_and_file(digit, tmp_path, shape):
    np.save(tmp_path / "one.npy", digit.reshape(shape))
    np.testing.assert_allclose(load_image(tmp_path / "one.npy"), digit / 255.0, atol=1e-6)
    assert read_image_array(tmp_path / "one.npy").shape == (1, 28, 28)


@pytest.mark.parametrize("arr", [
    np.zeros((4, 28, 28, 3), np.uint8), np.zeros((5, 7)), np.zeros((4, 1, 784)), np.zeros((2, 2, 28, 28)),
    np.zeros((0, 784)), np.array(["a"] * 784), np.full((28, 28), -1.0), np.full((28, 28), 300.0),
    np.full((28, 28), np.nan),
], ids=["rgb", "5x7", "N-1-784", "2-2-28-28", "empty", "strings", "negative", "over-255", "nan"])
def test_other_arrays_are_refused_naming_the_layouts(arr):
    with pytest.raises(InputError) as err:
        digits_from_array(arr, "x.npy")
    msg = str(err.value)
    assert "x.npy" in msg and "\n" not in msg
    assert LAYOUTS in msg or "0..255" in msg or "no images" in msg


def test_refused_array_is_one_line_on_the_cli(zoo_boids_bundle, tmp_path):
    np.save(tmp_path / "rgb.npy", np.zeros((2, 28, 28, 3), np.uint8))
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--file", tmp_path / "rgb.npy"), "(N, 784)")
    np.save(tmp_path / "two.npy", np.full((2, 28, 28), 9, np.uint8) * (np.arange(28) > 14))
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", tmp_path / "two.npy"), "--file")


# -- the Python API: classify_images reads what run reads --------------------------------------------
class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_classify_images_takes_what_run_takes(zoo_boids_bundle, mnist56, tmp_path):
    from swarmedge.runtimes import Classifier

    x, y = mnist56
    clf = Classifier(zoo_boids_bundle)
    log = logging.getLogger("swarmedge.images")
    records = _Records()
    log.addHandler(records)
    try:
        want = [p.index for p in clf.classify_images(x / np.float32(255))]  # what eval passes
        assert records.lines == []  # MNIST-ready digits: unchanged and nothing said
        assert np.mean(np.array(want) == y) >= 0.95
        for name, arr in {"uint8": x, "(N, 784)": x.reshape(len(x), 784), "(N, 1, 28, 28)": x[:, None],
                          "(N, 28, 28, 1) float64": x[..., None] / 255.0, "dark on light": 1 - x / np.float32(255),
                          "list of arrays": list(x)}.items():
            assert [p.index for p in clf.classify_images(arr)] == want, name
        assert any("inverted 40" in line for line in records.lines), records.lines
        paths = []
        for i, a in enumerate(x[:3]):
            paths.append(tmp_path / f"{i}.png")
            Image.fromarray(255 - a).save(paths[-1])
        assert [p.index for p in clf.classify_images(paths)] == want[:3]
        assert [p.index for p in clf.classify_images([str(p) for p in paths])] == want[:3]
        assert [p.index for p in clf.classify_images(str(paths[1]))] == want[1:2]
        assert [p.index for p in clf.classify_images(paths[2])] == want[2:3]
    finally:
        log.removeHandler(records)
    for bad, needle in [(np.zeros((2, 5)), "(N, 784)"), (tmp_path / "missing.png", "not found"),
                        ([tmp_path / "0.png", tmp_path / "nope.png"], "nope.png"), (np.zeros((28, 28)), "blank")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            clf.classify_images(bad)


def test_folders_and_devices_are_named_for_what_they_are(zoo_boids_bundle, digit, tmp_path, reliability):
    """A folder or a device given where an image file goes is not 'not found': say what it is."""
    import os

    from swarmedge.runtimes import Classifier

    Image.fromarray(digit).save(tmp_path / "five.png")
    folder = tmp_path / "digits.npy"  # a folder, even with an array file's suffix
    folder.mkdir()
    clf = Classifier(zoo_boids_bundle)
    for bad, needle in [(tmp_path, "is a folder, not an image: pass its image files"),
                        (folder, "is a folder"), ([tmp_path / "five.png", tmp_path], "is a folder"),
                        (os.devnull, "is not a regular file")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            clf.classify_images(bad)
        reliability["images"]["refused in one line"] += 1
    with pytest.raises(InputError, match="is a folder"):
        read_image_array(folder)
    # run --image takes a folder: its images, sorted (sub-folders too); one without any is refused
    r = cli_result("run", zoo_boids_bundle, "--image", tmp_path)
    assert r.exit_code == 0 and run_labels(r) == ["5"], r.output
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", folder), "holds no images")
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", os.devnull), "is not a regular file")
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--file", folder), "is a folder")


# -- run --file and folders holding arrays -------------------------------------------------------------
def test_run_file_on_a_digit_bundle_takes_arrays_and_says_so(zoo_boids_bundle, digit, tmp_path):
    Image.fromarray(digit).save(tmp_path / "five.png")
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--file", tmp_path / "five.png"), "pass it with --image")
    (tmp_path / "five.csv").write_text("0,1\n")
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--file", tmp_path / "five.csv"), ".npy/.npz")
    with pytest.raises(InputError, match="not a .npy or .npz"):
        read_image_array(tmp_path / "five.png")


def test_class_folders_take_every_digit_of_an_array_file(zoo_boids_bundle, mnist56, tmp_path):
    from swarmedge.datasets import load_labelled

    x, y = mnist56
    root = tmp_path / "digits"
    for label in (0, 1):
        (root / "56"[label]).mkdir(parents=True)
        np.save(root / "56"[label] / "batch.npy", 255 - x[y == label])  # 20 dark-on-light digits each
    Image.fromarray(x[0]).save(root / "5" / "one.png")
    ds = load_labelled(root)
    assert len(ds) == 41 and np.bincount(ds.labels).tolist() == [21, 20]
    assert any(n.startswith("5/batch.npy: 20 image(s)") for n in ds.notes), ds.notes
    r = cli_result("eval", zoo_boids_bundle, "--data", root, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] >= 0.95
    with pytest.raises(InputError, match="batch.npy holds 20 images; here each file must be one image"):
        load_images([root / "5" / "batch.npy"], source=str(root))


# -- broken and hostile files ----------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(9000, 8000), (20000, 20000), (100000, 1), (70000, 70000)])
def test_bombs_and_absurd_sizes_are_one_line(tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(*size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow DecompressionBombWarning may escape
        with pytest.raises(InputError, match="bomb.png.*pixels") as err:
            load_image(path)
    assert "\n" not in str(err.value) and "limit" in str(err.value)


def test_bomb_on_the_cli(zoo_boids_bundle, tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", tmp_path / "bomb.png"), "bomb.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_are_one_line(digit, tmp_path, zoo_boids_bundle, suffix):
    big = np.asarray(Image.fromarray(digit).resize((200, 200)))
    path = tmp_path / f"cut{suffix}"
    Image.fromarray(big).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="cut"):
        load_image(path)
    assert_one_line_error(cli_result("run", zoo_boids_bundle, "--image", path), f"cut{suffix}")


def test_blank_image_is_refused_naming_it(tmp_path):
    Image.new("L", (28, 28), 200).save(tmp_path / "blank.png")
    with pytest.raises(InputError, match="blank.png is blank"):
        load_image(tmp_path / "blank.png")


# -- folders -----------------------------------------------------------------------------------------
def _folder(root, mnist56, junk: bool = True):
    x, y = mnist56
    for i, (a, label) in enumerate(zip(x, y)):
        d = root / "56"[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - a).save(d / f"{i}.png")  # dark on light, as scanned
    if junk:
        for d in (root / "5", root / "6"):
            (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
            (d / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS resource fork
            (d / ".ipynb_checkpoints").mkdir()
            (d / ".ipynb_checkpoints" / "1-checkpoint.png").write_bytes(b"not a png")
        (root / "5" / "notes.txt").write_text("scanned on Tuesday")
        (root / ".ipynb_checkpoints").mkdir()
        (root / "__MACOSX").mkdir()
        (root / "__MACOSX" / "x.png").write_bytes(b"junk")
    return root


def test_folder_skips_hidden_and_non_image_files(mnist56, tmp_path):
    root = _folder(tmp_path / "digits", mnist56)
    notices = []
    files = image_files(root / "5", recursive=True, notices=notices)
    assert [f.name for f in files] == sorted(f"{i}.png" for i in range(20))
    assert len(notices) == 1 and "notes.txt" in notices[0] and "1 file" in notices[0]

    from swarmedge.datasets import load_labelled
    from swarmedge.export.samples import load_samples

    ds = load_labelled(root)
    assert ds.label_names == ["5", "6"] and len(ds) == 40
    assert any("inverted 40" in n for n in ds.notes), ds.notes
    assert load_samples(root, "boids").raw.shape == (40, 28, 28)


def test_eval_on_a_folder_with_junk(zoo_boids_bundle, mnist56, tmp_path):
    root = _folder(tmp_path / "digits", mnist56)
    r = cli_result("eval", zoo_boids_bundle, "--data", root, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] >= 0.95
    (root / "6" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert_one_line_error(cli_result("eval", zoo_boids_bundle, "--data", root), "bad.png")


def test_calibration_arrays_in_any_layout(mnist56, tmp_path):
    from swarmedge.export.samples import load_samples

    x = mnist56[0]
    np.save(tmp_path / "flat.npy", x.reshape(len(x), 784))
    np.save(tmp_path / "blank.npy", np.zeros((2, 1, 28, 28), np.uint8))
    np.testing.assert_allclose(load_samples(tmp_path / "flat.npy", "boids").raw, x / 255.0, atol=1e-6)
    assert not load_samples(tmp_path / "blank.npy", "boids").raw.any()  # blanks kept as zeros: feeds skip them


@pytest.mark.parametrize("kind", ["folder", "flat npy"])
def test_export_calibrates_on_image_folders_and_flat_arrays(tiny_boids_ckpt, mnist56, tmp_path, kind):
    from swarmedge.export import export_bundle

    if kind == "folder":
        data = _folder(tmp_path / "cal", mnist56)
    else:
        data = tmp_path / "cal.npy"
        np.save(data, mnist56[0].reshape(-1, 784))
    _, manifest = export_bundle(tiny_boids_ckpt, tmp_path / "b.bundle", quantize_mode="static",
                                calibration=data, calibration_size=16)
    assert manifest["quantization"]["calibration"]["inputs"] == 16
    assert manifest["int8_vs_fp32"]["inputs"] == 40 - 16
