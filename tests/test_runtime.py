"""The device side: runs without torch/onnx, checks hashes, rejects bad input in one line."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from swarmedge.errors import BundleError, InputError
from swarmedge.runtimes import Bundle, Classifier
from swarmedge.runtimes.images import images_to_boids, load_image
from swarmedge.runtimes.text import TextEncoder

from .conftest import run_device


def _copy(bundle, tmp_path):
    dst = tmp_path / "copy.bundle"
    shutil.copytree(bundle, dst)
    return dst


def test_run_text_without_torch_or_onnx(text_bundle):
    r = run_device(["run", str(text_bundle), "--text", "the film was good", "--text", "awful plot", "--json"])
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["input"] for row in rows] == ["the film was good", "awful plot"]
    for row in rows:
        assert row["label"] in ("negative", "positive") and 0.5 <= row["probability"] <= 1.0


def test_run_images_without_torch_or_onnx(boids_bundle, data_dir, tmp_path):
    with np.load(data_dir / "mnist.npz") as z:
        digits = z["x_test"][:3]
    Image.fromarray(digits[0]).save(tmp_path / "d0.png")
    np.save(tmp_path / "d.npy", digits)
    r = run_device(["run", str(boids_bundle), "--image", str(tmp_path / "d0.png"), "--precision", "fp32",
                    "--format", "table"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\t")[0] in ("5", "6")
    r = run_device(["run", str(boids_bundle), "--file", str(tmp_path / "d.npy"), "--json"])
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3


def test_stdin_input(text_bundle):
    r = run_device(["run", str(text_bundle), "-"], input="good film\nbad film\n")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    same = run_device(["run", str(text_bundle), "--file", "-"], input="good film\nbad film\n")
    assert same.returncode == 0 and same.stdout == r.stdout


@pytest.mark.parametrize("make_bad,needle", [
    (lambda b: (b / "model.int8.onnx").write_bytes(b"tampered"), "sha256"),
    (lambda b: (b / "manifest.json").write_text("{not json"), "corrupt"),
    (lambda b: (b / "manifest.json").unlink(), "no manifest.json"),
    (lambda b: (b / "model.int8.onnx").unlink(), "missing"),
    (lambda b: (b / "tokenizer.json").write_text("{}"), "sha256"),
])
def test_broken_bundles_fail_in_one_line(text_bundle, tmp_path, make_bad, needle):
    bundle = _copy(text_bundle, tmp_path)
    make_bad(bundle)
    r = run_device(["run", str(bundle), "--text", "good film"])
    assert r.returncode != 0
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--text", "   "], "empty"),
    (["--image", "x.png"], "classifies text"),
    ([], "exactly one of"),
    (["--file", "nope.txt"], "not found"),
])
def test_bad_text_input_fails_in_one_line(text_bundle, args, needle):
    r = run_device(["run", str(text_bundle), *args])
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr


def test_bad_images_fail_in_one_line(boids_bundle, tmp_path):
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    np.save(tmp_path / "nan.npy", np.full((28, 28), np.nan, dtype=np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((5, 7), dtype=np.float32))
    np.save(tmp_path / "blank.npy", np.zeros((28, 28), dtype=np.float32))
    cases = {"junk.png": "cannot decode", "nan.npy": "NaN", "wrong.npy": "expected", "blank.npy": "no pixel"}
    for name, needle in cases.items():
        r = run_device(["run", str(boids_bundle), "--image", str(tmp_path / name)])
        assert r.returncode != 0, name
        assert needle in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
    r = run_device(["run", str(tmp_path / "no.bundle"), "--image", str(tmp_path / "junk.png")])
    assert r.returncode != 0 and "bundle not found" in r.stderr


def test_python_api_validates_shapes_and_values(text_bundle, boids_bundle):
    text = Classifier(text_bundle)
    good = {"input_ids": np.zeros((2, 32), dtype=np.int64)}
    assert text.scores(good).shape == (2, 2)
    bad_feeds = [
        {"input_ids": np.zeros((2, 30), dtype=np.int64)},  # not a multiple of cluster_size
        {"input_ids": np.zeros((2, 32), dtype=np.int32)},
        {"input_ids": np.zeros((32,), dtype=np.int64)},
        {"input_ids": np.full((1, 32), 10**6, dtype=np.int64)},
        {"ids": np.zeros((2, 32), dtype=np.int64)},
    ]
    for feeds in bad_feeds:
        with pytest.raises(InputError):
            text.scores(feeds)
    boids = Classifier(boids_bundle, precision="fp32")
    b = np.zeros((1, 4, 2), dtype=np.float32)
    for feeds in [{"boids": b * np.nan, "lengths": np.array([4])},
                  {"boids": b, "lengths": np.array([5])},
                  {"boids": b, "lengths": np.array([0])},
                  {"boids": b[..., :1], "lengths": np.array([4])}]:
        with pytest.raises(InputError):
            boids.scores(feeds)
    with pytest.raises(InputError):
        boids.classify_texts(["hello"])


def test_tokenization_matches_the_reference_recipe(text_bundle):
    b = Bundle.open(text_bundle)
    enc = TextEncoder(b.read_text("tokenizer.json"), seq_len=8)
    ids = enc.encode(["The FILM was good", "the film was good and the plot was not bad at all"])
    vocab = json.loads(b.read_text("tokenizer.json"))["model"]["vocab"]
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    assert ids.shape == (2, 8) and ids.dtype == np.int64
    assert ids[0].tolist() == [cls, vocab["the"], vocab["film"], vocab["was"], vocab["good"], sep, 0, 0]
    assert ids[1, 0] == cls and ids[1, -1] == sep and 0 not in ids[1]  # truncated, [SEP] kept


def test_boids_follow_the_reference_mapping():
    img = np.zeros((28, 28), dtype=np.float32)
    img[0, 27] = img[27, 0] = 1.0
    img[5, 5] = 0.5  # not above the threshold
    boids, lengths = images_to_boids(img[None])
    assert lengths.tolist() == [2]
    np.testing.assert_allclose(boids[0], [[-10, 10], [10, -10]])


def test_load_image_converts_with_notices(tmp_path):
    img = Image.new("RGB", (56, 56), "white")
    img.paste((0, 0, 0), (20, 10, 30, 50))  # a black bar on white: inverted, then framed
    img.save(tmp_path / "w.png")
    notices = []
    arr = load_image(tmp_path / "w.png", notices)
    assert arr.shape == (28, 28) and len(notices) == 1  # one line per image, naming it
    assert notices[0].startswith("w.png:") and "inverted" in notices[0] and "framed" in notices[0]


def test_bundle_without_int8_falls_back_to_fp32(tiny_boids_ckpt, tmp_path):
    from swarmedge.export import export_bundle

    path, _ = export_bundle(tiny_boids_ckpt, tmp_path / "fp.bundle", quantize_mode=None)
    assert Bundle.open(path).default_precision == "fp32"
    with pytest.raises(InputError, match="no int8"):
        Classifier(path, precision="int8")
    with pytest.raises(BundleError, match="not found"):
        Bundle.open(tmp_path / "missing")


@pytest.mark.parametrize("arg", [None, 123, 1.5, ["b.bundle"], {"path": "b.bundle"}, "", "  "],
                         ids=["None", "int", "float", "list", "dict", "empty", "blank"])
def test_bundle_arguments_that_are_no_path_are_refused_in_one_line(arg, reliability):
    with pytest.raises(InputError) as info:
        Classifier(arg)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "bundle" in message, message
    assert ("path" in message or "empty" in message) and not isinstance(info.value, TypeError)
    reliability["usage errors"]["one line"] += 1


def test_bundle_path_as_bytes_or_pathlike_opens(boids_bundle):
    import os

    for arg in (os.fsencode(boids_bundle), boids_bundle, str(boids_bundle)):
        assert Bundle.open(arg).path == boids_bundle
