"""An input's scores never depend on its batch; data labels and outputs that mean what they say.

Issue 12 items 4-6 and the cases int8-result-depends-on-batch and own-labels-01-or-one-class.
"""

import gzip
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from swarmedge.cli import cli
from swarmedge.errors import BundleError, InputError
from swarmedge.evaluate import evaluate_model
from swarmedge.manifest import MANIFEST, dumps, read_manifest, sha256_file
from swarmedge.runtimes import Classifier
from swarmedge.runtimes.feeds import Samples, feeds_for
from swarmedge.runtimes.score import score


def _imdb_texts(data_dir, n):
    with gzip.open(data_dir / "imdb_test.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(12500 + n), f)]
    return [r["text"] for r in rows[:n // 2] + rows[12500:12500 + n - n // 2]]


def _digits(data_dir, n):
    with np.load(data_dir / "mnist.npz") as z:
        x, y = z["x_test"], z["y_test"]
    return x[np.isin(y, (5, 6))][:n].astype(np.float32) / 255.0


def _scores(preds):
    return np.array([p.scores for p in preds], dtype=np.float32)


def _check_invariance(classify, inputs, others):
    """Alone, in batches of 7 and 64, shuffled among other inputs, on 1 and 2 threads: the same bits."""
    alone = np.concatenate([_scores(classify(inputs[i:i + 1], batch_size=1, threads=1)) for i in range(len(inputs))])
    for batch_size, threads in ((7, 1), (64, 2), (64, 1)):
        np.testing.assert_array_equal(_scores(classify(inputs, batch_size=batch_size, threads=threads)), alone)
    mixed = list(inputs) + list(others)
    order = np.random.default_rng(0).permutation(len(mixed))
    shuffled = [mixed[i] for i in order] if isinstance(inputs, list) else np.stack([mixed[i] for i in order])
    got = _scores(classify(shuffled, batch_size=64, threads=2))
    back = np.empty_like(got)
    back[order] = got
    np.testing.assert_array_equal(back[:len(inputs)], alone)
    return alone


def test_int8_text_scores_do_not_depend_on_the_batch(zoo_small_bundle, data_dir):
    texts = _imdb_texts(data_dir, 80)

    def classify(items, batch_size, threads):
        return Classifier(zoo_small_bundle, precision="int8", batch_size=batch_size, threads=threads).classify_texts(
            items)

    assert Classifier(zoo_small_bundle).precision == "int8"  # the default the cases use
    _check_invariance(classify, texts[:64], texts[64:])


def test_every_path_gives_the_same_int8_scores(zoo_small_bundle, data_dir, tmp_path):
    texts = _imdb_texts(data_dir, 20)
    alone = np.concatenate([_scores(Classifier(zoo_small_bundle, batch_size=1, threads=1).classify_texts([t]))
                            for t in texts])
    data = tmp_path / "own.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)),
                    encoding="utf-8")
    report = evaluate_model(zoo_small_bundle, str(data), batch_size=256)
    np.testing.assert_array_equal(np.array(report["scores"], dtype=np.float32), alone)
    b = Classifier(zoo_small_bundle).bundle
    pre = b.manifest["preprocessing"]
    feeds = feeds_for(Samples(texts, "test"), pre, b.read_text(pre["tokenizer"]), batch_size=16)
    np.testing.assert_array_equal(score(zoo_small_bundle, "int8", feeds), alone)
    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(zoo_small_bundle), "--file", str(lines), "--json"])
    assert result.exit_code == 0, result.output
    cli_scores = np.array([json.loads(line)["scores"] for line in result.stdout.splitlines()], dtype=np.float32)
    single_line = [t.replace("\n", " ") for t in texts]
    np.testing.assert_array_equal(cli_scores, _scores(Classifier(zoo_small_bundle).classify_texts(single_line)))


def test_int8_digit_scores_do_not_depend_on_the_batch(zoo_boids_bundle, data_dir):
    digits = _digits(data_dir, 90)

    def classify(items, batch_size, threads):
        return Classifier(zoo_boids_bundle, batch_size=batch_size, threads=threads).classify_images(np.asarray(items))

    _check_invariance(classify, digits[:64], digits[64:])
    # fp32 too: boid inputs are no longer padded to their batch's largest swarm
    def classify_fp32(items, batch_size, threads):
        return Classifier(zoo_boids_bundle, precision="fp32", batch_size=batch_size,
                          threads=threads).classify_images(np.asarray(items))

    _check_invariance(classify_fp32, digits[:32], digits[64:])


def test_case_int8_result_depends_on_batch(zoo_small_bundle, cases_dir):
    case = cases_dir / "int8-result-depends-on-batch"
    runs = []
    for name in ("review.txt", "review_and_another.txt"):
        result = CliRunner().invoke(cli, ["run", str(zoo_small_bundle), "--file", str(case / name), "--json"])
        assert result.exit_code == 0, result.output
        runs.append([json.loads(line) for line in result.stdout.splitlines()])
    assert len(runs[0]) == 1 and len(runs[1]) == 2
    assert runs[0][0]["scores"] == runs[1][0]["scores"]
    assert runs[0][0]["label"] == runs[1][0]["label"] == "positive"  # fp32 says positive 0.513 in both


def test_case_own_labels_01_or_one_class(zoo_small_bundle, cases_dir):
    case = cases_dir / "own-labels-01-or-one-class"
    named = case / "own01.jsonl"
    r01 = CliRunner().invoke(cli, ["eval", str(zoo_small_bundle), "--data", str(named), "--json"])
    assert r01.exit_code == 0, r01.output
    report = json.loads(r01.stdout)
    assert report["samples"] == 40 and report["labels"] == ["negative", "positive"]
    assert "0 = negative, 1 = positive" in r01.stderr
    assert {c: v["support"] for c, v in report["per_class"].items()} == {"negative": 20, "positive": 20}
    rpos = CliRunner().invoke(cli, ["eval", str(zoo_small_bundle), "--data", str(case / "ownpos.jsonl"), "--json"])
    assert rpos.exit_code == 0, rpos.output
    pos = json.loads(rpos.stdout)
    assert pos["samples"] == 20 and list(pos["per_class"]) == ["positive"]
    assert pos["macro_recall"] == pos["accuracy"] == pos["per_class"]["positive"]["recall"]


def test_labels_by_name_by_index_and_refused(text_bundle, tmp_path):
    texts = ["a good film", "an awful plot", "the actor was great", "bad movie"]

    def data(labels, name):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in zip(texts, labels)),
                        encoding="utf-8")
        return str(path)

    by_name = evaluate_model(text_bundle, data(["positive", "negative", "positive", "negative"], "names.jsonl"))
    by_index = evaluate_model(text_bundle, data([1, 0, 1, 0], "ints.jsonl"))
    by_string_index = evaluate_model(text_bundle, data(["1", "0", "1", "0"], "strs.jsonl"))
    for r in (by_index, by_string_index):
        assert r["confusion_matrix"] == by_name["confusion_matrix"] and r["scores"] == by_name["scores"]
    assert by_name["notes"] == [] and by_index["notes"]
    only_neg = evaluate_model(text_bundle, data(["negative"] * 4, "neg.jsonl"))
    assert list(only_neg["per_class"]) == ["negative"] and only_neg["confusion_matrix"][1] == [0, 0]
    for labels, needle in ((["great", "bad", "great", "bad"], "['bad', 'great']"), ([0, 1, 2, 0], "['2']")):
        result = CliRunner().invoke(cli, ["eval", str(text_bundle), "--data", data(labels, "bad.jsonl")])
        assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_digit_folder_labelled_by_index(boids_bundle, tmp_path, data_dir):
    from PIL import Image

    digits = _digits(data_dir, 6)
    for label in ("0", "1"):
        (tmp_path / label).mkdir()
        for i, d in enumerate(digits[:3] if label == "0" else digits[3:]):
            Image.fromarray((d * 255).astype(np.uint8)).save(tmp_path / label / f"{i}.png")
    report = evaluate_model(boids_bundle, str(tmp_path))
    assert report["labels"] == ["5", "6"] and report["samples"] == 6
    assert report["notes"] == ["read the data's labels as class indices: 0 = 5, 1 = 6"]


def _tampered(bundle, tmp_path, edit_manifest=None, edit_onnx=None):
    out = tmp_path / "tampered.bundle"
    shutil.copytree(bundle, out)
    manifest = read_manifest(out)
    if edit_onnx is not None:
        import onnx

        for name in ("model.onnx", "model.int8.onnx"):
            if name in manifest["files"]:
                model = onnx.load(out / name)
                edit_onnx(model)
                onnx.save(model, out / name)
                manifest["files"][name] = {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
    if edit_manifest is not None:
        edit_manifest(manifest)
    (out / MANIFEST).write_text(dumps(manifest), encoding="utf-8")
    return out


def test_a_non_finite_score_is_an_error_never_a_label(text_bundle, tmp_path):
    from onnx import numpy_helper

    def poison(model):  # the classifier head's bias: every score becomes NaN
        for init in model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.float32 and arr.shape == (2,):
                init.CopyFrom(numpy_helper.from_array(np.full(2, np.nan, np.float32), init.name))
                return
        raise AssertionError("no (2,) float initializer to poison")

    bad = _tampered(text_bundle, tmp_path, edit_onnx=poison)
    for precision in ("fp32", "int8"):
        with pytest.raises(BundleError, match="non-finite score"):
            Classifier(bad, precision=precision).classify_texts(["a good film"])
        result = CliRunner().invoke(cli, ["run", str(bad), "--text", "a good film", "--precision", precision])
        assert result.exit_code == 2 and "non-finite score" in result.stderr and "Traceback" not in result.output
        assert result.stdout == ""


def test_a_bundle_with_more_labels_than_outputs_is_refused_on_open(text_bundle, tmp_path):
    def three_labels(m):  # config.num_classes too, or the manifest alone is refused (test_bundle.py)
        m.update(labels=["neg", "neu", "pos"])
        m["config"]["num_classes"] = 3

    bad = _tampered(text_bundle, tmp_path, edit_manifest=three_labels)
    with pytest.raises(BundleError, match="scores 2 classes but the manifest has 3 labels"):
        Classifier(bad)
    result = CliRunner().invoke(cli, ["run", str(bad), "--text", "a good film"])
    assert result.exit_code == 2 and "3 labels" in result.stderr


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": -1}, {"threads": 0}, {"threads": 2.5}])
def test_classifier_refuses_nonsense_sizes(text_bundle, kwargs):
    with pytest.raises(InputError):
        Classifier(text_bundle, **kwargs)


@pytest.mark.parametrize("which,data", [("text", "mnist"), ("boids", "imdb"), ("boids", "own.jsonl"),
                                        ("text", "folder")])
def test_data_of_the_other_kind_is_refused_in_one_line(text_bundle, boids_bundle, tmp_path, which, data):
    from PIL import Image

    (tmp_path / "own.jsonl").write_text('{"text": "a good film", "label": 1}\n', encoding="utf-8")
    (tmp_path / "folder" / "5").mkdir(parents=True)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "folder" / "5" / "a.png")
    bundle = text_bundle if which == "text" else boids_bundle
    arg = str(tmp_path / data) if data in ("own.jsonl", "folder") else data
    result = CliRunner().invoke(cli, ["eval", str(bundle), "--data", arg, "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    wanted = "pass --data imdb" if which == "text" else "pass --data mnist"
    assert "but this model classifies" in result.stderr and wanted in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_blank_calibration_digits_are_left_out_or_refused(tiny_boids_ckpt, tmp_path, data_dir):
    from swarmedge.export import export_bundle

    np.save(tmp_path / "blank.npy", np.zeros((10, 28, 28), np.uint8))
    result = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt), "--calibration", str(tmp_path / "blank.npy"),
                                      "-o", str(tmp_path / "b.bundle")])
    assert result.exit_code == 2 and "0 usable inputs" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "b.bundle").exists()
    half = (_digits(data_dir, 6) * 255).astype(np.uint8)
    half[:3] = 0
    np.save(tmp_path / "half.npy", half)
    _, manifest = export_bundle(tiny_boids_ckpt, tmp_path / "h.bundle", calibration=tmp_path / "half.npy")
    assert manifest["int8_vs_fp32"]["inputs"] == 2 and "3 blank of 6 left out" in manifest["int8_vs_fp32"]["source"]


def test_python_api_refuses_what_it_cannot_classify_in_order(text_bundle, boids_bundle, data_dir):
    text = Classifier(text_bundle)
    for bad in (None, {"text": "a good film"}, {"a good film"}, 5, []):
        with pytest.raises(InputError, match="classify_texts|no text given"):
            text.classify_texts(bad)
    generated = text.classify_texts(t for t in ["a good film", "an awful plot"])
    assert _scores(generated).tolist() == _scores(text.classify_texts(["a good film", "an awful plot"])).tolist()
    digits = Classifier(boids_bundle)
    two = _digits(data_dir, 2)
    for bad in (None, {"a": 1}, b"five.png", [two[0], "five.png"]):
        with pytest.raises(InputError, match="classify_images"):
            digits.classify_images(bad)
    np.testing.assert_array_equal(_scores(digits.classify_images(d for d in two)), _scores(digits.classify_images(two)))
    for kwargs in ({"precision": ""}, {"threads": 0}):
        with pytest.raises(InputError):
            Classifier(text_bundle, **kwargs)


def test_int8_that_disagrees_with_fp32_is_refused_or_not_the_default(tiny_text_ckpt, tmp_path, monkeypatch):
    import swarmedge.export.pipeline as pipeline
    from swarmedge.errors import ParityError
    from swarmedge.export import export_bundle

    monkeypatch.setattr(pipeline, "MIN_INT8_AGREEMENT", 1.01)  # no int8 model can pass: the gate must hold
    with pytest.raises(ParityError, match="agrees with fp32 on only"):
        export_bundle(tiny_text_ckpt, tmp_path / "refused.bundle", agreement_size=16)
    assert not (tmp_path / "refused.bundle").exists()
    kept, manifest = export_bundle(tiny_text_ckpt, tmp_path / "kept.bundle", agreement_size=16, allow_mismatch=True)
    assert manifest["int8_vs_fp32"]["ok"] is False
    assert Classifier(kept).precision == "fp32" and Classifier(kept, precision="int8").precision == "int8"
    result = CliRunner().invoke(cli, ["run", str(kept), "--text", "a good film", "--json"])
    assert result.exit_code == 0, result.output
